"""Counting, and doing a thing at most once a while, from the OCPP path.

The OCPP path uses the cache only to count (replaced sockets) and to do a thing once a minute
(a refused handshake's security event). While the cache does not answer (backoffice.shared_cache:
down, restarting or hung), this process counts and remembers on its own: a charger's handshake
never fails because of the cache (a Redis restart turned every reconnecting charger's handshake
into a 500).
"""

from __future__ import annotations

import time
from typing import Any

from backoffice import shared_cache

_LOCAL_MAX = 10_000
# key -> (expires at, monotonic; value): what this process remembers while the cache is away.
_local: dict[str, tuple[float, int]] = {}


def once(key: str, ttl: float) -> bool:
    """Whether `key` was new: set for `ttl` seconds unless it is already set."""
    return shared_cache.use(
        lambda cache: bool(cache.add(key, 1, ttl)), lambda: _local_once(key, ttl)
    )


def count(key: str, ttl: float) -> int:
    """Count one more in the window of `ttl` seconds that the first count opened; the count."""
    return shared_cache.use(
        lambda cache: _shared_count(cache, key, ttl), lambda: _local_count(key, ttl)
    )


def _shared_count(cache: Any, key: str, ttl: float) -> int:
    cache.add(key, 0, ttl)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, ttl)
        return 1


def _local_once(key: str, ttl: float) -> bool:
    now = time.monotonic()
    if _local.get(key, (0.0, 0))[0] > now:
        return False
    _local_set(key, 1, now + ttl)
    return True


def _local_count(key: str, ttl: float) -> int:
    now = time.monotonic()
    expires, value = _local.get(key, (0.0, 0))
    if expires <= now:  # a new window
        expires, value = now + ttl, 0
    _local_set(key, value + 1, expires)
    return value + 1


def _local_set(key: str, value: int, expires: float) -> None:
    if key not in _local and len(_local) >= _LOCAL_MAX:
        now = time.monotonic()
        for stale in [k for k, (at, _) in _local.items() if at <= now]:
            del _local[stale]
        if len(_local) >= _LOCAL_MAX:  # still full of live keys: forget the oldest half
            for old in list(_local)[: _LOCAL_MAX // 2]:
                del _local[old]
    _local[key] = (expires, value)
