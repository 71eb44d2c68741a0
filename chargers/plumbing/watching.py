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

import logging
import time
from collections.abc import Callable

from django.core.cache import cache

from chargers.plumbing.failures import FailureLog

logger = logging.getLogger("chargers.ocpp")
failures = FailureLog(logger)

VERSION_KEY = "watch:version"
REFRESH_S = 2.0  # how stale "is anybody watching this charger?" may be


def watch(key: str, ttl: int) -> None:
    """Mark `key` watched for `ttl` seconds (call again before it expires to keep it). Without
    the cache the page still shows; it only misses live rows until the cache is back."""
    try:
        _watch(key, ttl)
    except Exception as exc:  # noqa: BLE001 - any cache failure: the page is not live
        failures.failed(
            "watch failed", "A browser's watch could not be kept in the cache (%s)", exc, exc=exc
        )


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

        When the cache cannot be reached, the view stays as it was (chargers not asked about yet
        count as not watched) and is asked again after REFRESH_S: a watched charger's rows then
        reach its open Logs tab a little later, but the frames are stored as always (a Redis
        restart used to send every log row and meter value written meanwhile to the dead
        letters)."""
        try:
            return self._refresh(charger_ids)
        except Exception as exc:  # noqa: BLE001 - any cache failure: keep the last view
            failures.failed(
                "watch lookup failed",
                "Which chargers a browser follows could not be read from the cache (%s); "
                "the last view is used until it can",
                exc,
                exc=exc,
            )
            self.refreshed = time.monotonic()
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
