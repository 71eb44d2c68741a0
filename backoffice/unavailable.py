"""settings' handler500 (portal/urls.py): a request that failed because the database did not
answer in time or rolled it back (unreachable, its connection pool exhausted for DB_POOL_TIMEOUT,
a lock or statement timeout, a deadlock or serialization failure) is a 503 with Retry-After and a
sentence in the caller's form (the API's {"detail"}, the OCPI envelope, a page), not a 500 that
says the server is broken. A client that retries 503s (and an Idempotency-Key's retry: a 5xx
gives the key back) then gets its answer once the database is back.

The failed statement's transaction was rolled back, but a page that saves in several steps may
have saved the first ones: the sentence asks to reload before trying again. Any other error is
Django's own 500 page. The page is rendered without the request's context processors, which would
ask the same database again.

The same for Redis (the cache, the channel layer) and the Celery broker: code that needs them and
has no way on without them (a rate limit that is not ours, a command to a charger) raised their
connection error into a 500; it is a 503 saying a service is not answering. The throttles and
queueing of this package go on without them (shared_cache.py, throttle.py, queueing.py)."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils import timezone
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

RETRY_AFTER_S = 5
MESSAGE = (
    "The database is busy or out of reach, so this request did not finish. Try again in a few "
    "seconds; reload first to see whether anything was saved."
)
SERVICE_MESSAGE = (
    "A service this site relies on is not answering, so this request did not finish. Try again "
    "in a few seconds; reload first to see whether anything was saved."
)


def unavailable_words(exc: BaseException | None) -> str | None:
    """The sentence for a request that failed on a dependency, or None for any other error."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return MESSAGE
    if isinstance(exc, (RedisError, BrokerUnavailable)):
        return SERVICE_MESSAGE
    return None


def server_error_page(request: HttpRequest) -> HttpResponse:
    message = unavailable_words(sys.exc_info()[1])
    if message is None:
        return defaults.server_error(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=503)
    elif request.path.startswith("/ocpi/"):
        now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"status_code": 3000, "status_message": message, "timestamp": now}
        response = JsonResponse(body, status=503)
    else:
        page = loader.render_to_string("backoffice/unavailable.html", {"message": message})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response
