"""Per-client rate limits for the guest endpoints (fixed one-minute windows), counted by
backoffice/throttle.py: in the shared cache, or in this process's memory while Redis does not
answer, so a guest who scans a QR code during a Redis blip still gets the page."""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.shortcuts import render

from backoffice import throttle

# Requests per client IP per minute. "ports" is the busy page's own check for a free port
# (every 20 s): it never counts against "lookup", so waiting never shows "Too many tries".
LIMITS = {"lookup": 20, "start": 10, "ports": 30}
WINDOW_S = 60


def limit_for(scope: str) -> int:
    return int(getattr(settings, f"GUEST_{scope.upper()}_LIMIT_PER_MIN", LIMITS[scope]))


def _clock() -> float:
    return time.time()


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def hit(scope: str, ip: str, *, now: float | None = None) -> tuple[bool, int]:
    """Count one request; return (allowed, seconds until the window resets)."""
    now = _clock() if now is None else now
    window = int(now // WINDOW_S)
    count = throttle.hit(f"guest-{scope}", f"{ip}:{window}", WINDOW_S + 5)
    return count <= limit_for(scope), int(WINDOW_S - now % WINDOW_S) + 1


def rate_limited(scope: str):
    """Answer 429 with a friendly page once a client exceeds the scope's per-minute limit."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            allowed, retry_after = hit(scope, client_ip(request))
            if not allowed:
                response = render(
                    request,
                    "guest/rate_limited.html",
                    {"retry_after": retry_after, "scope": scope},
                    status=429,
                )
                response["Retry-After"] = str(retry_after)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
