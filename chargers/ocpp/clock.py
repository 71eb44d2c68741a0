"""A charger's clock, checked at the door. Pure: no I/O, no Django.

A charger without a set clock (no battery behind its real-time clock, a reboot before the
BootNotification answer set it) stamps its messages 1970 or 2000; a drifting one stamps them
ahead of ours. Taken as sent, such a time made a session 56 years long (its time price, its
idle fee, a guest's ceiling of hours reached at the start), put it in a statement month long
gone, or sent a partner a CDR from 1970. A time before OCPP 1.6 existed, or ahead of our
clock by more than `AHEAD_MAX`, is no time the charger can have meant: the time we received
the message is used, the message's row says so, and the charger gets a `clock_wrong`
deviation for support (docs/quirks.md). A time in the past after the floor is kept: offline
chargers queue their messages and send them later with the time they happened.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# OCPP 1.6 was published in 2015: no charger speaking it recorded anything before.
FLOOR = datetime(2015, 1, 1, tzinfo=UTC)
# Clocks drift and messages take a moment; more than this ahead of ours is a wrong clock.
AHEAD_MAX = timedelta(minutes=10)


def wrong(when: datetime, received: datetime) -> str:
    """Why `when` cannot be the time a message received at `received` meant ("" if it can)."""
    if when < FLOOR:
        return "is before 2015: the charger's clock is not set"
    if when > received + AHEAD_MAX:
        ahead = when - received
        if ahead.days >= 2:
            return f"is {ahead.days} days ahead of ours: the charger's clock is wrong"
        hours, minutes = divmod(int(ahead.total_seconds()) // 60, 60)
        return f"is {hours} h {minutes} min ahead of ours: the charger's clock is wrong"
    return ""


def checked(when: datetime, received: datetime) -> tuple[datetime, str]:
    """The time to use for a message's `when`, and why it was replaced ("": it was not)."""
    problem = wrong(when, received)
    return (received, problem) if problem else (when, "")


def split_notes(text: str) -> tuple[str, str]:
    """A Logs row's `violation` text as (schema violations, wrong-clock notes): a replaced time
    is noted on the row beside real violations ("; " between notes, as the readers join them),
    but a wrong clock breaks no schema and is not counted as a violation."""
    schema: list[str] = []
    clock_notes: list[str] = []
    for part in text.split("; ") if text else []:
        is_clock = part.endswith("receive time used") and "the charger's clock is" in part
        (clock_notes if is_clock else schema).append(part)
    return "; ".join(schema), "; ".join(clock_notes)
