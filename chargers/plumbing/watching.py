"""Which chargers a browser follows (a host's Logs tab, a guest's live page), as every OCPP
process sees it, without a cache round trip per charger.

A browser marks a charger watched with a cache key that expires unless refreshed (`watch`).
A process with 10,000 chargers used to ask the cache about every charger it wrote for, every
2 s (an MGET over thousands of keys on a database thread). Watchers are few and change
rarely, so a new watcher also bumps one version key; each process then re-reads every charger
only when that version changed, and otherwise only the few it knows are watched (to notice
that a watch expired) and chargers it has not asked about yet: one GET plus a small MGET per
refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.cache import cache

from backoffice import shared_cache

VERSION_KEY = "watch:version"
REFRESH_S = 2.0  # how stale "is anybody watching this charger?" may be
STALE_FOR_S = 30.0  # ... and how long more while the cache does not answer


def watch(key: str, ttl: int) -> None:
    """Mark `key` watched for `ttl` seconds (call again before it expires to keep it). Without
    the cache the page still shows; it only misses live rows until the cache is back."""
    shared_cache.use(lambda _cache: _watch(key, ttl), lambda: None)


def _watch(key: str, ttl: int) -> None:
    if cache.add(key, 1, ttl):  # a new watcher: every process re-reads everything once
        if not cache.add(VERSION_KEY, 1, None):
            try:
                cache.incr(VERSION_KEY)
            except ValueError:  # evicted between add and incr
                cache.add(VERSION_KEY, 1, None)
    else:
        cache.touch(key, ttl)


class WatchedSet:
    """This process's view of one kind of watch (its keys are `key_of(charger_id)`)."""

    def __init__(self, key_of: Callable[[int], str]) -> None:
        self.key_of = key_of
        self.watched: set[int] = set()
        self.checked: set[int] = set()  # chargers asked about since the last version change
        self.version: object = None
        self.refreshed = float("-inf")

    def known(self, charger_ids: set[int]) -> set[int] | None:
        """The watched ones among `charger_ids` if the view is fresh and covers them all, else None."""
        if time.monotonic() - self.refreshed > REFRESH_S or not charger_ids <= self.checked:
            return None
        return charger_ids & self.watched

    def refresh(self, charger_ids: set[int]) -> set[int]:
        """Bring the view up to date for `charger_ids` (synchronous cache calls: run it in the
        database pool) and return the watched ones among them.

        While the cache does not answer, the view stays as it was (chargers not asked about yet
        count as not watched) for STALE_FOR_S more: a watched charger's rows then reach its open
        Logs tab a little later, but the frames are stored as always (a Redis restart used to
        send every log row and meter value written meanwhile to the dead letters)."""
        return shared_cache.use(
            lambda _cache: self._refresh(charger_ids), lambda: self._stale(charger_ids)
        )

    def _stale(self, charger_ids: set[int]) -> set[int]:
        # Taken as fresh for a while: each refresh would otherwise wait for the cache again (a
        # hung Redis: a socket timeout on every log batch).
        self.refreshed = time.monotonic() + STALE_FOR_S
        self.checked |= charger_ids  # new chargers too: not watched, as far as anyone can tell
        return charger_ids & self.watched

    def _refresh(self, charger_ids: set[int]) -> set[int]:
        version = cache.get(VERSION_KEY)
        if version != self.version:
            ask = self.checked | charger_ids
            self.version, self.checked = version, set()
        else:
            ask = self.watched | (charger_ids - self.checked)
            ask |= (
                charger_ids if time.monotonic() - self.refreshed > 60 * REFRESH_S else set()
            )  # belt and braces
        found = cache.get_many([self.key_of(pk) for pk in ask]) if ask else {}
        now_watched = {pk for pk in ask if self.key_of(pk) in found}
        self.watched = (self.watched - ask) | now_watched
        self.checked |= ask
        self.refreshed = time.monotonic()
        return charger_ids & self.watched

    def forget(self, charger_id: int) -> None:
        self.watched.discard(charger_id)
        self.checked.discard(charger_id)
