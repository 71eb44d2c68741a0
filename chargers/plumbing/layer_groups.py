"""Channel-layer group membership for charger sockets, batched.

Every accepted charger joins its command group (chargers.devices.commands.command_group). With
channels_redis that is a ZADD and an EXPIRE, two round trips on a pooled connection; a restart
storm of thousands of sockets opened as many Redis connections at once (py-spy: 12 % of a
storm's server time in `group_add`, most of it making connections). Here the joins (and the
leaves) waiting at the same moment go to Redis as one pipeline per shard. Other layers
(in-memory) are called directly.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from chargers.plumbing.batching import Coalescer


async def _pipelined(
    pairs: list[tuple[str, str]],
    one: Callable[[Any, str, str], Awaitable[None]],
    queue: Callable[[Any, Any, str, str, float], None],
) -> list[None]:
    """Send `pairs` (group, channel) to Redis as one pipeline per shard, each member's commands
    queued by `queue`; another layer (in-memory) gets `one` call per member."""
    layer: Any = get_channel_layer()
    try:
        from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - channels_redis is a dependency
        RedisChannelLayer = None  # noqa: N806
    if RedisChannelLayer is None or not isinstance(layer, RedisChannelLayer):
        for group, channel in pairs:
            await one(layer, group, channel)
        return [None] * len(pairs)
    by_shard: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for group, channel in pairs:
        assert layer.require_valid_group_name(group) and layer.require_valid_channel_name(channel)
        by_shard[layer.consistent_hash(group)].append((group, channel))
    now = time.time()
    for index, members in by_shard.items():
        try:
            await _execute(layer, index, members, queue, now)
        except RedisConnectionError:
            # A pooled connection that Redis closed (it restarted): the pool drops it, and the
            # commands (ZADD, EXPIRE, ZREM: the same effect twice) go again on a new one.
            await _execute(layer, index, members, queue, now)
    return [None] * len(pairs)


async def _execute(
    layer: Any,
    index: int,
    members: list[tuple[str, str]],
    queue: Callable[[Any, Any, str, str, float], None],
    now: float,
) -> None:
    async with layer.connection(index).pipeline(transaction=False) as pipe:
        for group, channel in members:
            queue(layer, pipe, group, channel, now)
        await pipe.execute()


def _queue_add(layer: Any, pipe: Any, group: str, channel: str, now: float) -> None:
    # The same two commands RedisChannelLayer.group_add sends, on its own group keys.
    key = layer._group_key(group)
    pipe.zadd(key, {channel: now})
    pipe.expire(key, layer.group_expiry)


def _queue_discard(layer: Any, pipe: Any, group: str, channel: str, now: float) -> None:
    # RedisChannelLayer.group_discard's one command.
    pipe.zrem(layer._group_key(group), channel)


async def _group_add_many(pairs: list[tuple[str, str]]) -> list[None]:
    return await _pipelined(pairs, lambda layer, g, c: layer.group_add(g, c), _queue_add)


async def _group_discard_many(pairs: list[tuple[str, str]]) -> list[None]:
    return await _pipelined(pairs, lambda layer, g, c: layer.group_discard(g, c), _queue_discard)


_joins: Coalescer[tuple[str, str], None] = Coalescer("group-add", apply_async=_group_add_many)
# Leaves come in storms too: 30,000 chargers closing at once opened a Redis connection each,
# past Redis's 10,000 clients ("max number of clients reached", 2026-11-27).
_leaves: Coalescer[tuple[str, str], None] = Coalescer(
    "group-discard", apply_async=_group_discard_many
)


async def group_add(group: str, channel: str) -> None:
    await _joins.submit((group, channel))


async def group_discard(group: str, channel: str) -> None:
    await _leaves.submit((group, channel))


REJOIN_CHUNK = 2000  # members per pipeline when every open socket joins again


async def group_add_all(pairs: list[tuple[str, str]]) -> None:
    """Join (group, channel) pairs again, in pipelines of REJOIN_CHUNK (rejoin_command_groups)."""
    for start in range(0, len(pairs), REJOIN_CHUNK):
        await _group_add_many(pairs[start : start + REJOIN_CHUNK])
