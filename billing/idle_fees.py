"""Pure idle-time rules: when charging finished, and how much idle time is billable."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

# The car stopped drawing power while still plugged in (OCPP 1.6 §7.7 ChargePointStatus).
IDLE_STATUSES = frozenset({"SuspendedEV", "Finishing"})
# Charging again, or paused by the charger itself (load management, fault): never the guest's idle time.
ACTIVE_STATUSES = frozenset({"Charging", "SuspendedEVSE", "Faulted", "Unavailable"})


def charging_window(
    *,
    started_at: datetime,
    ended_at: datetime,
    statuses: Iterable,
    power_samples: Iterable,
    power_threshold_w: Decimal,
    waiting: Iterable[tuple[datetime, datetime | None]] = (),
) -> tuple[datetime, datetime]:
    """Return (charging started, charging finished) for the session.

    Charging finished at the start of the last uninterrupted SuspendedEV/Finishing stretch
    before the session ended. Without status notifications in the session, it finished at
    the first of the trailing power samples below the threshold, provided the car drew
    power before. Otherwise charging lasted until the session ended (no idle time).
    Waiting for power (`waiting`: (from, until or None while it waits)) is never idle: an idle
    stretch that a wait overlaps or follows starts after that wait at the earliest (in the
    driver's favour), and a session still waiting at its end has no idle time.
    """
    idle_since = None
    seen_status = False
    for change in sorted(statuses, key=lambda s: s.timestamp):
        if change.timestamp < started_at or change.timestamp > ended_at:
            continue
        if change.status in IDLE_STATUSES:
            seen_status = True
            if idle_since is None:
                idle_since = change.timestamp
        elif change.status in ACTIVE_STATUSES:
            seen_status = True
            idle_since = None
    if idle_since is None and not seen_status:
        low_since = None
        drew_power = False
        for timestamp, watts in sorted(power_samples, key=lambda p: p[0]):
            if timestamp < started_at or timestamp > ended_at:
                continue
            if watts < power_threshold_w:
                if drew_power and low_since is None:
                    low_since = timestamp
            else:
                drew_power = True
                low_since = None
        idle_since = low_since
    finished = idle_since if idle_since is not None else ended_at
    # Waiting for power (the site's shared budget, docs/power.md) is never the driver's idle
    # time: idle time starts at the earliest after the last wait ended (never, while waiting).
    for wait_from, wait_until in waiting:
        if wait_from < ended_at and (wait_until is None or wait_until > finished):
            finished = ended_at if wait_until is None else max(finished, wait_until)
    return started_at, max(started_at, min(finished, ended_at))


def idle_seconds_after_grace(idle_seconds: int, grace_minutes: int) -> int:
    """Return the idle seconds left after the grace period (never negative)."""
    return max(int(idle_seconds) - int(grace_minutes or 0) * 60, 0)
