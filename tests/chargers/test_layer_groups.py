"""Command-group joins and leaves in batches (chargers/plumbing/layer_groups.py), on the run's
channel layer: Redis in the CI=true pass (one pipeline per shard), in-memory on SQLite."""

from __future__ import annotations

import asyncio
import uuid

from channels.layers import get_channel_layer

from chargers.plumbing import layer_groups


async def _members(layer, group: str) -> set[str]:
    if hasattr(layer, "_group_key"):  # channels_redis: the group's sorted set
        async with layer.connection(layer.consistent_hash(group)) as conn:
            found = await conn.zrange(layer._group_key(group), 0, -1)
        return {m.decode() if isinstance(m, bytes) else m for m in found}
    return set(layer.groups.get(group, {}))


async def test_sockets_leaving_at_once_each_leave_their_own_group_only():
    layer = get_channel_layer()
    run = uuid.uuid4().hex[:8]
    groups = [f"cmd-test-{run}-{i}" for i in range(40)]
    channels = [await layer.new_channel() for _ in groups]
    await asyncio.gather(
        *(layer_groups.group_add(g, c) for g, c in zip(groups, channels, strict=True))
    )
    second = await layer.new_channel()  # a newer socket of the first charger, in the same group
    await layer_groups.group_add(groups[0], second)

    # 39 sockets close at the same moment; the 40th stays.
    await asyncio.gather(
        *(layer_groups.group_discard(g, c) for g, c in zip(groups[:39], channels[:39], strict=True))
    )

    assert await _members(layer, groups[0]) == {second}
    for group in groups[1:39]:
        assert await _members(layer, group) == set()
    assert await _members(layer, groups[39]) == {channels[39]}


async def test_leaving_a_group_twice_or_one_never_joined_changes_nothing_else():
    layer = get_channel_layer()
    group = f"cmd-test-{uuid.uuid4().hex[:8]}"
    stays, leaves = await layer.new_channel(), await layer.new_channel()
    await layer_groups.group_add(group, stays)
    await layer_groups.group_add(group, leaves)

    await asyncio.gather(
        layer_groups.group_discard(group, leaves),
        layer_groups.group_discard(group, leaves),
        layer_groups.group_discard(f"{group}-never", leaves),
    )

    assert await _members(layer, group) == {stays}
