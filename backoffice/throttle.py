"""Counters for throttles that are not sign-ins (those are django-axes, login_throttle.py):
unknown OCPI credentials tokens per client, and mails a stranger can make us send (password
reset, email change) per address and per client. Kept in the cache, so every process behind one
Redis shares them (docs/security.md, "Throttles").

While the cache does not answer (Redis down or restarting), each process counts in its own memory
(`fallback`): the throttles keep holding, at worst at their limit times the number of processes,
and nothing they guard fails. Failing open would let a mail bomb through for the whole outage;
failing closed would refuse every OCPI partner's calls (the credentials check runs on each one)
and every password reset, for a cache outage that has nothing to do with them."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest

from . import shared_cache

# This process's counters while the shared cache is down.
fallback = LocMemCache("backoffice-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})


def _key(scope: str, subject: str) -> str:
    digest = hashlib.sha256(subject.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
    return f"throttle:{scope}:{digest}"


def count(scope: str, subject: str) -> int:
    key = _key(scope, subject)
    return shared_cache.use(
        lambda store: int(store.get(key) or 0), lambda: int(fallback.get(key) or 0)
    )


def _counted(store: Any, key: str, window_s: int) -> int:
    store.add(key, 0, timeout=window_s)
    try:
        return int(store.incr(key))
    except ValueError:  # expired between add and incr: a new window
        store.add(key, 1, timeout=window_s)
        return 1


def hit(scope: str, subject: str, window_s: int) -> int:
    """Count one event for `subject` in a window of `window_s` from its first event; return the
    count so far."""
    key = _key(scope, subject)
    return shared_cache.use(
        lambda store: _counted(store, key, window_s), lambda: _counted(fallback, key, window_s)
    )


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR only, as the sign-in throttle (behind a proxy, uvicorn sets it)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


# Unknown OCPI tokens: the sign-in policy's numbers, counted per client IP (a guesser's tokens
# all differ, so there is no login to pair the address with).
def ocpi_token_locked(request: HttpRequest) -> bool:
    return count("ocpi-token", client_ip(request)) >= settings.LOGIN_FAILURE_LIMIT


def ocpi_token_failed(request: HttpRequest) -> None:
    hit("ocpi-token", client_ip(request), settings.LOGIN_COOLOFF_MINUTES * 60)


def mail_allowed(request: HttpRequest, action: str, address: str) -> bool:
    """Whether one more `action` mail to `address` asked from this client is within the limits
    (MAIL_ADDRESS_LIMIT per address and MAIL_CLIENT_LIMIT per client IP an hour); counts it."""
    by_address = hit(f"mail-{action}-to", address, 3600)
    by_client = hit(f"mail-{action}-from", client_ip(request), 3600)
    return by_address <= settings.MAIL_ADDRESS_LIMIT and by_client <= settings.MAIL_CLIENT_LIMIT
