"""allauth adapter: drivers get a DriverProfile and an opaque username, and land on driver pages."""

from __future__ import annotations

import secrets
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.urls import reverse


class DriverAccountAdapter(DefaultAccountAdapter):
    def populate_username(self, request: HttpRequest, user: AbstractBaseUser) -> None:
        # Hosts sign in with their email as username; a driver's username is never an email, so
        # the host sign-in can never match a driver (and the email stays changeable in one place).
        user.username = "driver-" + secrets.token_hex(8)  # type: ignore[attr-defined]

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        from .models import DriverProfile

        user = super().save_user(request, user, form, commit=commit)
        if commit:
            DriverProfile.objects.get_or_create(user=user)
        return user

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return reverse("drivers:home")

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return reverse("drivers:home")

    def get_email_verification_redirect_url(self, email_address: Any) -> str:
        return reverse("drivers:home")


def user_display(user: Any) -> str:
    """How allauth names a driver in its pages and messages ("Successfully signed in as …"):
    their email, never the opaque username."""
    return getattr(user, "email", "") or "your account"
