"""Sign-in throttling with django-axes: lock key, per-IP ceiling and the lockout response.

Policy (docs/security.md, "Sign-in throttling"):
- failed sign-ins are counted per (normalised login, client IP); LOGIN_FAILURE_LIMIT of them
  within LOGIN_COOLOFF_MINUTES lock that pair for LOGIN_COOLOFF_MINUTES (a failure while
  locked starts the cool-off again). Someone guessing a host's password from their own IP
  cannot lock the host out of sign-in from anywhere else.
- a client IP with LOGIN_IP_FAILURE_LIMIT failures in the window, over any logins, is locked
  too, so spraying many logins from one address is slowed down as well.
"""

from __future__ import annotations

import math
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.views import PasswordResetView
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from . import throttle


def normalized_login(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """Return the login as the lock key: stripped and lower-cased, like the email sign-in backend.

    `Host@Example.com` and ` host@example.com` are one account (backoffice.auth), so they share
    one failure counter; so are a driver's addresses in any case (drivers.auth). Other usernames are lower-cased too: that only merges counters.
    """
    value: Any = None
    if credentials:
        # Hosts, staff and API clients sign in with `username`, drivers (allauth) with `email`.
        value = credentials.get("username") or credentials.get("email")
    if value is None:
        data = getattr(request, "data", None)
        if data is None or not hasattr(data, "get"):
            data = request.POST
        value = data.get("username") or data.get("login")
    if not isinstance(value, str):
        return None
    return value.strip().lower()


def client_ip(request: HttpRequest) -> str | None:
    """Return REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy set it.

    Behind a TLS proxy, uvicorn (BEHIND_TLS_PROXY=true, FORWARDED_ALLOW_IPS) already puts the
    real client address in REMOTE_ADDR, and only for connections from the trusted proxy.
    """
    return request.META.get("REMOTE_ADDR")


def cooloff_minutes() -> int:
    """Return the cool-off in whole minutes (rounded up), as shown to the person locked out."""
    cool_off = get_cool_off()
    if cool_off is None:
        return 0
    return max(1, math.ceil(cool_off.total_seconds() / 60))


def lockout_message() -> str:
    minutes = cooloff_minutes()
    return f"Too many failed sign-in attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."


class LoginThrottleHandler(AxesDatabaseHandler):
    """axes' database handler, plus a per-IP ceiling and DRF requests flagged for the middleware."""

    def ip_failures(self, request: Any) -> int:
        """Return the failures from this request's IP, over all logins, within the cool-off."""
        ip_address = getattr(request, "axes_ip_address", None)
        if not ip_address:
            return 0
        since = (
            getattr(request, "axes_attempt_time", None) or timezone.now()
        ) - settings.AXES_COOLOFF_TIME
        total = AccessAttempt.objects.filter(
            ip_address=ip_address, attempt_time__gte=since
        ).aggregate(total=Sum("failures_since_start"))["total"]
        return int(total or 0)

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        """Return the failures that count towards the lock: the (login, IP) pair's, or the limit
        itself once the IP as a whole is past LOGIN_IP_FAILURE_LIMIT."""
        failures = int(super().get_failures(request, credentials))
        if self.ip_failures(request) >= settings.LOGIN_IP_FAILURE_LIMIT:
            return max(failures, int(get_failure_limit(request, credentials)))
        return failures

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        # DRF hands authenticate() its own Request wrapper: axes flags the wrapper, while
        # AxesMiddleware looks at the Django HttpRequest underneath.
        inner = getattr(request, "_request", None)
        if isinstance(inner, HttpRequest) and getattr(request, "axes_locked_out", False):
            inner.axes_locked_out = True  # type: ignore[attr-defined]
            inner.axes_credentials = credentials  # type: ignore[attr-defined]


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Return HTTP 429 with the cool-off: JSON for the API, the sign-in page's look otherwise."""
    message = lockout_message()
    cool_off = get_cool_off(request)
    retry_after = str(int(cool_off.total_seconds())) if cool_off else None
    response: HttpResponse
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    if retry_after:
        response["Retry-After"] = retry_after
    return response


MAIL_THROTTLED = (
    "Too many password reset emails were asked for this address or from your network. "
    "Try again in an hour."
)


class ThrottledPasswordResetView(PasswordResetView):
    """The portal's password reset, sending at most MAIL_ADDRESS_LIMIT mails an hour to one
    address and MAIL_CLIENT_LIMIT from one client IP (backoffice/throttle.py); above that a 429
    and no mail, for a known address or not (the answer says nothing about which it is)."""

    def form_valid(self, form: Any) -> HttpResponse:
        if not throttle.mail_allowed(self.request, "password-reset", form.cleaned_data["email"]):
            response = render(
                self.request,
                "registration/mail_throttled.html",
                {"message": MAIL_THROTTLED},
                status=429,
            )
            response["Retry-After"] = "3600"
            return response
        return super().form_valid(form)
