"""Channel-layer group membership for charger sockets, batched.

Every accepted charger joins its command group (chargers.devices.commands.command_group). With
channels_redis that is a ZADD and an EXPIRE, two round trips on a pooled connection; a restart
storm of thousands of sockets opened as many Redis connections at once (py-spy: 12 % of a
storm's server time in `group_add`, most of it making connections). Here the joins waiting at
the same moment go to Redis as one pipeline per shard. Other layers (in-memory) are called
directly.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from channels.layers import get_channel_layer

from chargers.plumbing.batching import Coalescer


async def _group_add_many(pairs: list[tuple[str, str]]) -> list[None]:
    layer: Any = get_channel_layer()
    try:
        from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - channels_redis is a dependency
        RedisChannelLayer = None  # noqa: N806
    if RedisChannelLayer is None or not isinstance(layer, RedisChannelLayer):
        for group, channel in pairs:
            await layer.group_add(group, channel)
        return [None] * len(pairs)
    by_shard: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for group, channel in pairs:
        assert layer.require_valid_group_name(group) and layer.require_valid_channel_name(channel)
        by_shard[layer.consistent_hash(group)].append((group, channel))
    now = time.time()
    for index, members in by_shard.items():
        # The same two commands RedisChannelLayer.group_add sends, on its own group keys.
        async with layer.connection(index).pipeline(transaction=False) as pipe:
            for group, channel in members:
                key = layer._group_key(group)
                pipe.zadd(key, {channel: now})
                pipe.expire(key, layer.group_expiry)
            await pipe.execute()
    return [None] * len(pairs)


_joins: Coalescer[tuple[str, str], None] = Coalescer("group-add", apply_async=_group_add_many)


async def group_add(group: str, channel: str) -> None:
    await _joins.submit((group, channel))
