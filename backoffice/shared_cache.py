"""The shared cache (Redis in production) is a dependency that can be down, restarting or hung:
`use` runs an operation on it, or the caller's stand-in while it does not answer, and `reachable`
tells GET /healthz.

After a failure the cache is left alone for RETRY_AFTER_S (every caller of `use` in the process
goes straight to its stand-in): a Redis that accepts connections and never answers costs one
request a socket timeout (5 s, redis-py's default) in that time, not every request. That pause
belongs to the cache's LOCATION, so a cache configured anew (a test's) is asked at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What Django's RedisCache raises when Redis refuses, drops or does not answer in time; OSError
# for a socket error redis-py does not wrap.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError)

RETRY_AFTER_S = 5.0
WARN_EVERY_S = 60.0
PROBE_KEY = "healthz:probe"

_down_until: dict[str, float] = {}  # a cache's LOCATION: when to ask it again
_warned_at = float("-inf")


def _location() -> str:
    return str(settings.CACHES["default"].get("LOCATION", ""))


def use(operation: Callable[[Any], T], otherwise: Callable[[], T]) -> T:
    """`operation(cache)`, or `otherwise()` while the cache does not answer."""
    global _warned_at
    location = _location()
    now = time.monotonic()
    if now < _down_until.get(location, 0.0):
        return otherwise()
    try:
        return operation(cache)
    except UNAVAILABLE as exc:
        now = time.monotonic()
        _down_until[location] = now + RETRY_AFTER_S
        if now - _warned_at >= WARN_EVERY_S:  # one line a minute, not one per request
            _warned_at = now
            logger.warning("The cache does not answer (%s): going on without it", exc)
        return otherwise()


def forget_failure() -> None:
    """Ask the cache again on the next call (a test that brought its own cache back)."""
    _down_until.clear()


def reachable() -> bool:
    """Whether the cache answers a read (a local-memory cache always does)."""
    return use(lambda store: store.get(PROBE_KEY) is None or True, lambda: False)
