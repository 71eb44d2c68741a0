"""`GET /healthz`: is this server process able to serve? For load balancers (deploy/haproxy).

200 `{"status": "ok"}` when this process answers and its database answers `SELECT 1`; 503
`{"status": "unavailable", "database": "unreachable"}` when the database does not (connect_timeout
is 5 s). When the cache (Redis) does not answer, `"cache": "unreachable"` is added, and with the
database up the answer is 200 `{"status": "degraded", "cache": "unreachable"}`: every process
shares one Redis, so a 503 would take them all out of the balancer at once, while pages, sign-in
and the API still answer without it (backoffice/shared_cache.py). A hung Redis is asked at most
once every shared_cache.RETRY_AFTER_S, so the check does not wait on it each time.

It is answered by a middleware placed first in MIDDLEWARE, before the security middleware and
host validation: a load balancer's health check comes over plain HTTP from the balancer's own
address with whatever Host header it sends, and must get this answer, not a redirect to https
(SECURE_SSL_REDIRECT) or a 400 for a host outside ALLOWED_HOSTS. It reveals nothing but which
dependency is down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import shared_cache

logger = logging.getLogger(__name__)

PATH = "/healthz"


def healthz(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    answer: dict[str, str] = {"status": "ok"}
    status = 200
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health check: database unreachable: %s", exc)
        connection.close()  # the next check connects afresh
        answer, status = {"status": "unavailable", "database": "unreachable"}, 503
    if not shared_cache.reachable():
        if status == 200:
            answer["status"] = "degraded"
        answer["cache"] = "unreachable"
    response: HttpResponse = JsonResponse(answer, status=status)
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answer `/healthz` before any other middleware runs (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == PATH:
            return healthz(request)
        return self.get_response(request)
