"""`GET /metrics`: the Prometheus text exposition (backoffice/metrics.py; docs/operations.md).

Closed unless configured: with neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS set it answers
404, as if it did not exist. A request is admitted with `Authorization: Bearer <METRICS_TOKEN>` or
from an address in METRICS_ALLOWED_NETWORKS; otherwise 401 when a token is configured (a scraper
with a wrong token learns it is wrong), 404 when only networks are.

Answered by a middleware placed right after the health check, before the https redirect and the
host check, for the same reason as `/healthz`: Prometheus scrapes each process over plain HTTP
by its address, with whatever Host header that gives.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import metrics

PATH = "/metrics"


def _in_networks(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def admitted(request: HttpRequest) -> bool:
    """Whether this request may read the metrics (the token, or an allow-listed address)."""
    networks = settings.METRICS_ALLOWED_NETWORKS
    if networks and _in_networks(request.META.get("REMOTE_ADDR", ""), networks):
        return True
    token = settings.METRICS_TOKEN
    return bool(token) and _bearer_matches(request, token)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN and not settings.METRICS_ALLOWED_NETWORKS:
        return HttpResponse("Not Found", status=404, content_type="text/plain")
    if not admitted(request):
        if settings.METRICS_TOKEN:
            return HttpResponse(
                "Unauthorized",
                status=401,
                content_type="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return HttpResponse("Not Found", status=404, content_type="text/plain")
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    response = HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


class MetricsMiddleware:
    """Answer `/metrics` before the https redirect and the host check (module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == PATH:
            return metrics_view(request)
        return self.get_response(request)
