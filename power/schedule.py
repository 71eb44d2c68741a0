"""Pure time-of-day budget rules: which limit is in force at a moment (docs/power.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)  # Monday = 0, as datetime.weekday()


@dataclass(frozen=True)
class Window:
    """From `start` to `end` (local time; end before start runs past midnight) on `days`."""

    start: time
    end: time
    limit_a: Decimal
    days: tuple[int, ...] = ALL_DAYS

    def covers(self, local: datetime) -> bool:
        t = local.time()
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= t < self.end
        if self.start == self.end:  # the whole day
            return local.weekday() in self.days
        # Past midnight: the part after midnight belongs to the day before.
        if t >= self.start:
            return local.weekday() in self.days
        return t < self.end and (local.weekday() - 1) % 7 in self.days


class ScheduleError(ValueError):
    """A schedule entry that cannot be read; the message says which and why."""


def _time(value: Any, where: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        if len(minutes) != 2:
            raise ValueError
        return time(int(hours) % 24 if int(hours) == 24 else int(hours), int(minutes))
    except (ValueError, TypeError):
        raise ScheduleError(f"{where}: use a time as HH:MM, e.g. 07:30.") from None


# A week of windows is a few dozen; anything longer is a mistake (or an attack), refused unread.
MAX_ENTRIES = 100


def parse_schedule(entries: Any) -> list[Window]:
    """Return the windows of a schedule as stored ([{start, end, limit_a, days?}, ...])."""
    if entries in (None, ""):
        return []
    if not isinstance(entries, list):
        raise ScheduleError("The schedule is a list of time windows.")
    if len(entries) > MAX_ENTRIES:
        raise ScheduleError(f"At most {MAX_ENTRIES} time windows.")
    windows = []
    for i, entry in enumerate(entries, start=1):
        where = f"Schedule entry {i}"
        if not isinstance(entry, dict):
            raise ScheduleError(f"{where}: give start, end and limit_a.")
        try:
            limit = Decimal(str(entry.get("limit_a")))
        except (InvalidOperation, ValueError):
            raise ScheduleError(f"{where}: limit_a must be a number of amperes.") from None
        if not limit.is_finite() or limit < 0 or limit > 10000:
            raise ScheduleError(f"{where}: limit_a must be between 0 and 10000 A.")
        days = entry.get("days", list(ALL_DAYS))
        if (
            not isinstance(days, list)
            or not days
            or any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in days)
        ):
            raise ScheduleError(f"{where}: days are numbers 0 (Monday) to 6 (Sunday).")
        windows.append(
            Window(
                start=_time(entry.get("start"), where),
                end=_time(entry.get("end"), where),
                limit_a=limit,
                days=tuple(sorted(set(days))),
            )
        )
    return windows


def scheduled_limit(windows: list[Window], local: datetime) -> Decimal | None:
    """Return the limit of the first window covering `local` (None: no window applies)."""
    for window in windows:
        if window.covers(local):
            return window.limit_a
    return None


def limit_in_force(
    *,
    static_a: Decimal,
    windows: list[Window],
    live_a: Decimal | None,
    live_expires_at: datetime | None,
    now: datetime,
    local: datetime,
) -> tuple[Decimal, str]:
    """Return (amperes per phase, where it comes from): a fresh live reading, else the
    schedule, else the static limit. Never above the static limit (the fuse)."""
    if live_a is not None and live_expires_at is not None and now < live_expires_at:
        return min(live_a, static_a), "live"
    scheduled = scheduled_limit(windows, local)
    if scheduled is not None:
        return min(scheduled, static_a), "schedule"
    return static_a, "static"
