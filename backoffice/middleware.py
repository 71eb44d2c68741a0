"""Refuse requests that carry a NUL character in any text input, before any view runs.

PostgreSQL cannot store or compare text containing NUL (0x00): a `?search=%00`, a path
segment or a JSON string with \\u0000 reaching a query would fail with a server error
deep inside a view. One check here answers 400 for every page and API route instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from backoffice.parsers import DEPTH_MESSAGE, nested_too_deeply

NUL_MESSAGE = "Text may not contain the NUL character (\\0)."
_JSON_NUL = b"\\u0000"
# Hooks whose sender retries any 400 for hours or days, so these views read the body themselves
# and drop NULs from what they keep: mail (a customer's email may carry NULs; support.inbound)
# and the payment processor's signed webhooks (the signature is over the raw bytes, NULs and
# all; billing.webhooks strips them from each text after verifying it).
BODY_NUL_HANDLED_BY_VIEW = ("/support/inbound/", "/billing/webhooks/")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def request_has_nul(request: HttpRequest) -> bool:
    """Return True if the path, the query string or a text field of the body holds a NUL."""
    if "\x00" in request.path or b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
        return True
    if request.method in ("GET", "HEAD", "OPTIONS") or request.path.startswith(
        BODY_NUL_HANDLED_BY_VIEW
    ):
        return False
    content_type = request.content_type or ""
    if _is_json(request):
        body = request.body
        if b"\x00" in body:
            return True
        if _JSON_NUL not in body.lower():
            return False
        try:
            return _has_nul(json.loads(body))
        except ValueError:
            return False  # the API answers malformed JSON with its own 400
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # Form fields only: uploaded files may contain any byte.
        try:
            fields = list(request.POST.lists())
        except MultiPartParserError:
            return False  # the view answers a malformed upload itself
        return any(_has_nul(value) for _name, values in fields for value in values)
    return False


def _is_json(request: HttpRequest) -> bool:
    content_type = request.content_type or ""
    return content_type == "application/json" or content_type.endswith("+json")


def bad_request(request: HttpRequest, message: str) -> HttpResponse:
    """A 400 in the form the caller reads: the API's {"detail"}, the OCPI envelope for a roaming
    partner's client (status 2001, "Invalid or missing parameters"), plain text elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=400)
    if request.path.startswith("/ocpi/"):
        from django.utils import timezone

        now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"status_code": 2001, "status_message": message, "timestamp": now}
        return JsonResponse(body, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def bad_request_page(request: HttpRequest, exception: Exception) -> HttpResponse:
    """settings' handler400 (portal/urls.py): what Django refuses before any view (a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields) in the caller's form, as `bad_request`; the
    API and OCPI got Django's HTML page before."""
    from django.views import defaults

    if not request.path.startswith(("/api/", "/ocpi/")):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        from django.conf import settings

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024
        return bad_request(request, f"The body is larger than the {limit:g} MB this site takes.")
    return bad_request(request, "The request is malformed.")


class RejectDeepJsonMiddleware:
    """Answer 400 to a JSON body nested deeper than MAX_JSON_DEPTH, before anything decodes it:
    every JSON route (API, OCPI, webhooks) would otherwise fail with RecursionError."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            too_deep = (
                request.method not in ("GET", "HEAD", "OPTIONS")
                and _is_json(request)
                and nested_too_deeply(request.body)
            )
        except RequestDataTooBig as exc:  # answered here: with DEBUG, Django's is a debug page
            return bad_request_page(request, exc)
        if too_deep:
            return bad_request(request, DEPTH_MESSAGE)
        return self.get_response(request)


class RejectNulMiddleware:
    """Answer 400 to any request with a NUL character in its path, query or text fields."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            has_nul = request_has_nul(request)
        except RequestDataTooBig as exc:  # a form over the limit (a JSON body is caught above)
            return bad_request_page(request, exc)
        if has_nul:
            return bad_request(request, NUL_MESSAGE)
        return self.get_response(request)


# The zone a viewer chose to read every time in (session key); empty: each location's own zone.
VIEWER_ZONE_KEY = "viewer_time_zone"
# Machine interfaces keep UTC ("Z") in their answers: only pages follow the viewer's zone.
_UTC_PATHS = ("/api/", "/ocpi/", "/admin/")


class ViewerTimezoneMiddleware:
    """Pages show times in the viewer's zone (issue 35 item 6): the zone of their locations when
    they all share one (the usual host), otherwise UTC; pages about one location switch to its
    zone themselves. Each shown time names its zone (backoffice.templatetags.when)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or request.path.startswith(_UTC_PATHS):
            return self.get_response(request)
        from django.utils import timezone

        from .formatting import zone_or_utc
        from .templatetags.when import viewer_zone_chosen
        from .tenancy import viewer_zone_name

        chosen = request.session.get(VIEWER_ZONE_KEY, "") if hasattr(request, "session") else ""
        zone = zone_or_utc(chosen) if chosen else None
        timezone.activate(zone or viewer_zone_name(user))
        token = viewer_zone_chosen.set(zone is not None)
        try:
            return self.get_response(request)
        finally:
            viewer_zone_chosen.reset(token)
            timezone.deactivate()
