"""Sign-in of drivers: allauth's email backend, limited to driver accounts and the driver form."""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest


class DriverEmailBackend(AuthenticationBackend):
    """Authenticate only driver users, and only when called with `email` (allauth's form).

    The host sign-in passes `username`, so it never reaches a driver through this backend; and
    a host can never sign in through the driver form (no DriverProfile).
    """

    def authenticate(
        self, request: HttpRequest | None, **credentials: Any
    ) -> AbstractBaseUser | None:
        if not credentials.get("email"):
            return None
        credentials.pop("username", None)
        user = super().authenticate(request, **credentials)
        if user is None or not hasattr(user, "driver_profile"):
            return None
        return user
