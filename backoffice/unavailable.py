"""settings' handler500 (portal/urls.py): a request that failed because the database did not
answer in time or rolled it back (unreachable, its connection pool exhausted for DB_POOL_TIMEOUT,
a lock or statement timeout, a deadlock or serialization failure) is a 503 with Retry-After and a
sentence in the caller's form (the API's {"detail"}, the OCPI envelope, a page), not a 500 that
says the server is broken. A client that retries 503s (and an Idempotency-Key's retry: a 5xx
gives the key back) then gets its answer once the database is back.

The failed statement's transaction was rolled back, but a page that saves in several steps may
have saved the first ones: the sentence asks to reload before trying again. Any other error is
Django's own 500 page. The page is rendered without the request's context processors, which would
ask the same database again."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils import timezone
from django.views import defaults

RETRY_AFTER_S = 5
MESSAGE = (
    "The database is busy or out of reach, so this request did not finish. Try again in a few "
    "seconds; reload first to see whether anything was saved."
)


def database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


def server_error_page(request: HttpRequest) -> HttpResponse:
    if not database_unavailable(sys.exc_info()[1]):
        return defaults.server_error(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    elif request.path.startswith("/ocpi/"):
        now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"status_code": 3000, "status_message": MESSAGE, "timestamp": now}
        response = JsonResponse(body, status=503)
    else:
        page = loader.render_to_string("backoffice/unavailable.html", {"message": MESSAGE})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response
