"""Two requests that write the same unique thing at the same moment (a double submit, two tabs,
a client's retry while the first still runs): the loser's unique violation is a 409 with a
sentence, not a 500. The writes that matter take turns or handle the race themselves; this is
the net under the rest, on every page and API route (not OCPI, whose partners get its own
envelope from its views)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

logger = logging.getLogger(__name__)

CONFLICT = (
    "The same thing was saved by another request at the same moment, so nothing of this one "
    "was saved. Reload to see what is saved now before trying again."
)


def is_unique_violation(exc: BaseException) -> bool:
    if not isinstance(exc, IntegrityError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23505":  # PostgreSQL unique_violation (psycopg)
        return True
    return "UNIQUE constraint failed" in str(exc)  # SQLite


class UniqueConflictMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/ocpi/") or not is_unique_violation(exception):
            return None
        logger.warning(
            "%s %s lost a race on a unique constraint: 409 (%s)",
            request.method,
            request.path,
            str(exception).splitlines()[0][:200],
        )
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": CONFLICT}, status=409)
        back = request.META.get("HTTP_REFERER", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = "/"
        context = {"message": CONFLICT, "back": back}
        return render(request, "backoffice/conflict.html", context, status=409)
