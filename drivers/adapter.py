"""allauth adapter: drivers get a DriverProfile and an opaque username, and land on driver pages."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
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

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # allauth greets with the site's name, which without the sites framework is the request's
        # host ("Hello from 127.0.0.1!"): the driver reads the product's name instead, and the
        # address it is reached at (issue 51 item 6).
        super().send_mail(template_prefix, email, {"current_site": brand(), **context})

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


@dataclass(frozen=True)
class Brand:
    """What allauth's emails call the site: `name` and `domain` (its template's two fields)."""

    name: str
    domain: str


def brand() -> Brand:
    site_url = getattr(settings, "SITE_URL", "")
    return Brand(
        name=getattr(settings, "DRIVER_BRAND_NAME", "EV charging"),
        domain=urlsplit(site_url).netloc if site_url else "",
    )
