"""Keep signed-in drivers on the driver pages: the host portal, admin and API are not for them."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect

# What a driver may open while signed in: their pages, the guest QR pages, support and the
# payment processor's doors (the sandbox card element and webhooks), static files.
DRIVER_PATHS = (
    "/driver/",
    "/s/",
    "/support/",
    "/billing/sandbox/",
    "/billing/webhooks/",
    "/static/",
    "/api/v1/support/",
)


class DriverBoundaryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        is_driver = hasattr(user, "driver_profile")
        if is_driver and not request.path.startswith(DRIVER_PATHS):
            if request.path.startswith("/api/"):
                return HttpResponseForbidden("Driver accounts have no access to the host API.")
            return redirect("drivers:home")
        # allauth's account pages manage driver logins only: a host's email is their username
        # and is changed by support (docs/drivers.md), never through these pages.
        if (
            not is_driver
            and request.path.startswith("/driver/account/")
            and not request.path.startswith("/driver/account/logout/")
        ):
            return redirect("backoffice:dashboard")
        return self.get_response(request)
