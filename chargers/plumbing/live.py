"""Live events for browsers: connector events for the guest page (group per connector)."""

from __future__ import annotations

import logging
import time

from channels.layers import get_channel_layer

from backoffice import shared_cache
from chargers.plumbing import watching
from chargers.plumbing.batching import Coalescer

logger = logging.getLogger(__name__)

WATCH_TTL_S = 120
_memo: dict[int, tuple[float, bool]] = {}


def connector_group(charger_id: int, connector_id: int) -> str:
    return f"connector.{charger_id}.{connector_id}"


def connector_watch_key(charger_id: int) -> str:
    return f"connwatch:{charger_id}"


def connector_watch(charger_id: int) -> None:
    """Mark that a browser follows this charger's connectors (refresh at least every minute)."""
    watching.watch(connector_watch_key(charger_id), WATCH_TTL_S)


def _watched_of(charger_ids: list[int]) -> list[bool]:
    keys = [connector_watch_key(pk) for pk in set(charger_ids)]
    # Without the cache no guest page can be told either: none is taken as watching.
    found = shared_cache.use(lambda cache: cache.get_many(keys), dict)
    return [connector_watch_key(pk) in found for pk in charger_ids]


# Chargers that just connected ask together (one MGET), not one cache round trip each.
_lookups: Coalescer[int, bool] = Coalescer("connector-watch", _watched_of)


async def _is_watched(charger_id: int) -> bool:
    now = time.monotonic()
    stamp, watched = _memo.get(charger_id, (0.0, False))
    if now - stamp > 2.0:
        watched = await _lookups.submit(charger_id)
        _memo[charger_id] = (now, watched)
    return watched


async def publish_connector_events(charger_id: int, events: list) -> None:
    """Send (connector_id, event) pairs to browsers following this charger, if any."""
    if not events or not await _is_watched(charger_id):
        return
    layer = get_channel_layer()
    for connector_id, event in events:
        try:
            await layer.group_send(
                connector_group(charger_id, connector_id), {"type": "connector.event", **event}
            )
        except Exception:  # live views are best effort; the state is stored either way
            logger.warning("Could not publish a connector event for %s", charger_id, exc_info=True)
