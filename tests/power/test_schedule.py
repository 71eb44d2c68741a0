"""Pure time-of-day budget rules: windows, midnight, days, and live > schedule > static."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from power.schedule import ScheduleError, limit_in_force, parse_schedule, scheduled_limit

A = Decimal
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hh, minutes=mm)


def test_a_window_covers_its_start_but_not_its_end():
    windows = parse_schedule([{"start": "17:00", "end": "21:00", "limit_a": "40"}])
    assert scheduled_limit(windows, at(0, 17)) == A(40)
    assert scheduled_limit(windows, at(0, 20, 59)) == A(40)
    assert scheduled_limit(windows, at(0, 21)) is None


def test_a_window_past_midnight_belongs_to_the_day_it_started():
    windows = parse_schedule(
        [{"start": "22:00", "end": "06:00", "limit_a": "50", "days": [4]}]  # Friday night
    )
    assert scheduled_limit(windows, at(4, 23)) == A(50)
    assert scheduled_limit(windows, at(5, 5, 59)) == A(50)  # Saturday morning
    assert scheduled_limit(windows, at(5, 23)) is None
    assert scheduled_limit(windows, at(4, 5)) is None  # Friday morning: Thursday's night


def test_the_first_covering_window_wins():
    windows = parse_schedule(
        [
            {"start": "17:00", "end": "19:00", "limit_a": "20"},
            {"start": "00:00", "end": "00:00", "limit_a": "45"},
        ]
    )
    assert scheduled_limit(windows, at(2, 18)) == A(20)
    assert scheduled_limit(windows, at(2, 3)) == A(45)


@pytest.mark.parametrize(
    "entries",
    [
        "17-21",
        [{"start": "7:3", "end": "09:00", "limit_a": "10"}],
        [{"start": "07:00", "end": "09:00", "limit_a": "-1"}],
        [{"start": "07:00", "end": "09:00", "limit_a": "x"}],
        [{"start": "07:00", "end": "09:00", "limit_a": "10", "days": []}],
        [{"start": "07:00", "end": "09:00", "limit_a": "10", "days": [True]}],
        ["07:00"],
    ],
)
def test_unreadable_entries_say_why(entries):
    with pytest.raises(ScheduleError):
        parse_schedule(entries)


def test_live_then_schedule_then_static_and_never_above_the_fuse():
    windows = parse_schedule([{"start": "00:00", "end": "00:00", "limit_a": "40"}])
    now = at(0, 12)
    kw = dict(static_a=A(63), windows=windows, now=now, local=now)
    assert limit_in_force(live_a=A(30), live_expires_at=now + timedelta(seconds=1), **kw) == (
        A(30),
        "live",
    )
    assert limit_in_force(live_a=A(30), live_expires_at=now, **kw) == (A(40), "schedule")
    assert limit_in_force(live_a=A(99), live_expires_at=now + timedelta(minutes=1), **kw) == (
        A(63),
        "live",
    )
    assert limit_in_force(
        static_a=A(63), windows=[], live_a=None, live_expires_at=None, now=now, local=now
    ) == (A(63), "static")
