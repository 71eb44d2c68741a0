"""A charger's quirk profile resolved from the fleet's profiles, and the deviations met on it
(docs/quirks.md).

The profiles are a small table read once and kept for PROFILES_CACHE_S per process (an admin
edit clears this process's copy at once; the others see it within that time). A connection
resolves its charger's deviations once, at connect and at each boot (`quirks_for`), and keeps
the answer (`handlers.common.Connection.quirks`): a frame costs no query. Deviations the reader
met that no profile names are recorded on the charger (`ChargerDeviation`), batched.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from backoffice import db
from chargers.models import Charger, ChargerDeviation, QuirkProfile
from chargers.ocpp import quirks as q
from chargers.plumbing import background
from chargers.plumbing.batching import Coalescer

PROFILES_CACHE_S = 30.0
EXAMPLE_MAX = 4000

_cached: tuple[float, tuple[q.Rule, ...]] | None = None


def rules_load() -> tuple[q.Rule, ...]:
    """The enabled profiles as rules (one query for the profiles, one for their deviations)."""
    profiles = QuirkProfile.objects.filter(enabled=True).prefetch_related("deviations")
    return tuple(
        q.Rule(
            deviations=frozenset(d.code for d in profile.deviations.all()),
            vendor=profile.vendor,
            model_prefix=profile.model_prefix,
            firmware_prefix=profile.firmware_prefix,
            firmware_min=profile.firmware_min,
            firmware_max=profile.firmware_max,
        )
        for profile in profiles
    )


def _fresh() -> tuple[q.Rule, ...] | None:
    if _cached is not None and time.monotonic() - _cached[0] < PROFILES_CACHE_S:
        return _cached[1]
    return None


def _keep(rules: tuple[q.Rule, ...]) -> tuple[q.Rule, ...]:
    global _cached
    _cached = (time.monotonic(), rules)
    return rules


def rules() -> tuple[q.Rule, ...]:
    fresh = _fresh()
    return fresh if fresh is not None else _keep(rules_load())


def forget() -> None:
    """Drop this process's copy of the profiles (an admin edit, a test)."""
    global _cached
    _cached = None


def quirks_of(vendor: str, model: str, firmware: str) -> q.Quirks:
    """The deviations of a charger with this vendor, model and firmware (ORM code)."""
    return q.resolve(rules(), vendor, model, firmware)


def quirks_of_row(charger: Charger) -> q.Quirks:
    """The deviations of a charger row at hand (a power pass, a command builder)."""
    return quirks_of(charger.vendor, charger.model, charger.firmware_version)


def quirks_of_charger(charger_id: int) -> q.Quirks:
    """The deviations of a charger as stored (its last boot's vendor, model, firmware): where no
    connection resolved them (a journal replayed, a power pass)."""
    facts = (
        Charger.objects.filter(pk=charger_id)
        .values_list("vendor", "model", "firmware_version")
        .first()
    )
    return quirks_of(*facts) if facts else q.NONE


async def quirks_for(
    vendor: str, model: str, firmware: str, *, cached_only: bool = False
) -> q.Quirks | None:
    """`quirks_of` from the event loop: no hop to the database once this process has read the
    profiles (a stale copy answers while it is refreshed in the background). `cached_only`
    (the database is away): None instead of the first read."""
    rules_now = _fresh()
    if rules_now is None and _cached is not None:
        # Stale: answer from the copy held and refresh it in the background, so no boot waits
        # for the database pool once this process has read the profiles.
        background.spawn(_reload(), "refreshing the quirk profiles")
        rules_now = _cached[1]
    if rules_now is None:
        if cached_only:
            return None
        rules_now = await _reload()
    return q.resolve(rules_now, vendor, model, firmware)


# One read in flight per event loop: a restart storm's thousands of connections wait for the
# same read of the profiles instead of each reading them.
_loading: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[tuple[q.Rule, ...]]]
_loading = weakref.WeakKeyDictionary()


async def _reload() -> tuple[q.Rule, ...]:
    loop = asyncio.get_running_loop()
    task = _loading.get(loop)
    if task is None or task.done():
        task = loop.create_task(_load(), name="quirk-profiles")
        _loading[loop] = task
    return await asyncio.shield(task)


async def _load() -> tuple[q.Rule, ...]:
    return _keep(await db.run(rules_load))


# -- deviations met ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Met:
    charger_id: int
    code: str
    detail: str
    example: str
    at: datetime


def example_frame(action: str, unique_id: str, payload: Any) -> str:
    """The CALL as the charger sent it, for support (cut to EXAMPLE_MAX characters)."""
    try:
        text = json.dumps([2, unique_id, action, payload], ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(payload)
    return text[:EXAMPLE_MAX]


def deviations_record(items: list[Met]) -> list[None]:
    """Count each deviation met on its charger: the first time with its frame, then first/last
    seen and the count. One row per (charger, deviation)."""
    merged: dict[tuple[int, str], tuple[Met, Met, int]] = {}
    for item in items:
        key = (item.charger_id, item.code)
        first, _, count = merged.get(key, (item, item, 0))
        merged[key] = (first, item, count + 1)
    with transaction.atomic():
        for (charger_id, code), (first, last, count) in sorted(merged.items()):
            _count(charger_id, code, first, last, count)
    return [None] * len(items)


def _count(charger_id: int, code: str, first: Met, last: Met, count: int) -> None:
    rows = ChargerDeviation.objects.filter(charger_id=charger_id, code=code)
    if rows.update(count=F("count") + count, last_seen_at=last.at, detail=last.detail):
        return
    try:
        with transaction.atomic():
            ChargerDeviation.objects.create(
                charger_id=charger_id,
                code=code,
                detail=first.detail,
                example=first.example,
                first_seen_at=first.at,
                last_seen_at=last.at,
                count=count,
            )
    except IntegrityError:  # another process recorded it first: count on its row
        rows.update(count=F("count") + count, last_seen_at=last.at, detail=last.detail)


def observed(
    *, charger_id: int, found: list[tuple[str, str]], example: str, at: datetime | None = None
) -> None:
    """Record deviations met (`found`: (code, what was seen)) now, in the caller's transaction."""
    when = at or timezone.now()
    deviations_record([Met(charger_id, code, detail, example, when) for code, detail in found])


_records: Coalescer[Met, None] = Coalescer("deviations", apply=deviations_record)


def observe(
    *, charger_id: int, found: list[tuple[str, str]], example: str, at: datetime | None = None
) -> None:
    """Record deviations met from the event loop, in the background (the frame's answer does not
    wait; many chargers' records go in one batch)."""
    when = at or timezone.now()
    for code, detail in found:
        background.spawn(
            _records.submit(Met(charger_id, code, detail, example, when)),
            f"recording deviation {code} of charger {charger_id}",
        )
