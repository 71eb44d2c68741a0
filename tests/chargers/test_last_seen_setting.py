"""How often a charger's last-seen time is written is a setting, CHARGER_LAST_SEEN_WRITE_EVERY_S
(default 15 s): a deployment tunes it, and a test's server shortens it.

Each case touches charger A twice and proves the writer scanned after the second touch by a
charger it had never written (B, C: a first time is written at once, whatever the period). The
second time of A is written beside C's when the period allows, and waits otherwise.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chargers.messagelog.log import MessageLogWriter
from chargers.models import Charger
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def _last_seen(charger: Charger):
    return (await Charger.objects.aget(pk=charger.pk)).last_seen_at


async def _written(charger: Charger) -> None:
    for _ in range(600):  # a stuck writer fails the test instead of hanging it
        if await _last_seen(charger) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{charger.station_id}'s last-seen time was never written")


async def _second_time_of_a_after_a_scan() -> tuple:
    a, b, c = [await sync_to_async(ChargerFactory)(last_seen_at=None) for _ in range(3)]
    first = timezone.now() - timedelta(minutes=10)
    second = first + timedelta(minutes=5)
    writer = MessageLogWriter()
    try:
        writer.touch(a.pk, now=first)
        writer.heard(b.pk)  # wakes the writer
        await _written(b)
        assert await _last_seen(a) == first, "A's first time is written at once"

        writer.touch(a.pk, now=second)
        writer.heard(c.pk)
        await _written(c)  # a scan ran after A's second touch
        return await _last_seen(a), first, second
    finally:
        writer.forget(a.pk)
        writer.forget(b.pk)
        writer.forget(c.pk)
        await writer.close()


async def test_a_short_period_writes_the_next_time_at_the_next_scan(settings):
    settings.CHARGER_LAST_SEEN_WRITE_EVERY_S = 0.0
    written, _first, second = await _second_time_of_a_after_a_scan()
    assert written == second


async def test_a_long_period_keeps_the_next_time_waiting(settings):
    settings.CHARGER_LAST_SEEN_WRITE_EVERY_S = 3600.0
    written, first, _second = await _second_time_of_a_after_a_scan()
    assert written == first
