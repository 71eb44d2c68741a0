"""Read a booking calendar (.ics) into bookings and blocked ranges. Pure: no Django, no I/O.

Shapes of the exports this reads (docs/pms.md):
- Airbnb: one all-day VEVENT per booking, SUMMARY "Reserved", DESCRIPTION with the reservation URL
  and the last four digits of the guest's phone; blocked nights are "Airbnb (Not available)".
- VRBO: all-day events, SUMMARY "Reserved - <guest name>" for bookings and "Blocked" for blocks.
- Booking.com: every closed range, booking or not, is "CLOSED - Not available": read as blocked,
  so a Booking.com calendar creates no reservations (connect the PMS that holds the bookings).
- PMS exports (Guesty, Hospitable, Track): timed or all-day events whose SUMMARY is the guest.
Events with STATUS:CANCELLED are cancellations; TRANSP:TRANSPARENT events are not stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar

_BLOCKED = re.compile(
    r"not available|unavailable|blocked|closed|owner (stay|block)|maintenance", re.IGNORECASE
)
_RESERVED_PREFIX = re.compile(
    r"^\s*(reserved|reservation|booked|booking)\s*(-|:|–)?\s*", re.IGNORECASE
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"phone[^:\n]*:\s*([+\d][\d ()\-]{3,})", re.IGNORECASE)


class CalendarError(ValueError):
    """The document is not a calendar we can read (the message is for hosts)."""


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    summary: str
    check_in: datetime  # aware
    check_out: datetime  # aware, after check_in
    all_day: bool
    blocked: bool
    cancelled: bool
    guest_name: str = ""
    guest_email: str = ""
    guest_phone: str = ""


def _as_aware(value: date | datetime, zone: ZoneInfo, at: time) -> tuple[datetime, bool]:
    if isinstance(value, datetime):
        # A "floating" time (no TZID, no Z) is the property's local time (RFC 5545 §3.3.5).
        return (value if value.tzinfo else value.replace(tzinfo=zone)), False
    return datetime.combine(value, at, tzinfo=zone), True


def _guest_name(summary: str) -> str:
    """VRBO's "Reserved - Anna Smith" gives the name; Airbnb's bare "Reserved" gives none."""
    rest = _RESERVED_PREFIX.sub("", summary, count=1).strip()
    if rest.lower() in ("", "reserved", "airbnb", "vrbo"):
        return ""
    return rest[:200]


def _first(component: icalendar.cal.Component, name: str) -> object:
    """A property's value; one given twice (a broken export) counts by its first."""
    value = component.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def _text(value: object) -> str:
    """Text as it can be stored: no NUL (PostgreSQL refuses it), no lone surrogate."""
    text = "" if value is None else str(value)
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()


def _moment(prop: object) -> date | None:
    """A DTSTART/DTEND's date or date-time; None for what no stay can start or end on (a
    period, a bare time, a value the library could not read)."""
    try:
        value = prop.dt  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # not a date property, or icalendar's broken property
        return None
    return value if isinstance(value, date) else None  # a datetime is a date too


def _end(
    component: icalendar.cal.Component,
    start: date,
    check_in: datetime,
    zone: ZoneInfo,
    check_out_at: time,
) -> datetime | None:
    """The event's end (DTEND, else DTSTART + DURATION); None for one that gives no usable end.

    An all-day event ends on its last date at the check-out time, whether DTEND, a DURATION or
    nothing (RFC 5545 §3.6.1: one day) gives that date. A timed DURATION counts its days on the
    calendar (P1D is the same time the next day) and its hours and minutes on the clock (PT2H is
    two real hours, also across a change to or from summer time)."""
    end_prop, duration = _first(component, "DTEND"), _first(component, "DURATION")
    if end_prop is not None:
        end = _moment(end_prop)
        return None if end is None else _as_aware(end, zone, check_out_at)[0]
    length = getattr(duration, "dt", None) if duration is not None else timedelta(days=1)
    if not isinstance(length, timedelta):
        return None
    if not isinstance(start, datetime):  # all day
        return datetime.combine(start + timedelta(days=length.days), check_out_at, tzinfo=zone)
    if duration is None:
        return check_in  # a date-time without an end takes no time at all: nothing to grant
    days = timedelta(days=length.days)
    on_the_calendar = check_in + days  # an aware datetime plus days: the same wall-clock time
    return (on_the_calendar.astimezone(UTC) + (length - days)).astimezone(check_in.tzinfo)


def _event(
    component: icalendar.cal.Component, zone: ZoneInfo, check_in_at: time, check_out_at: time
) -> FeedEvent | None:
    """One VEVENT as a stay or a block; None for an event that gives no usable range."""
    uid = _text(_first(component, "UID"))
    start = _moment(_first(component, "DTSTART"))
    if not uid or start is None:
        return None
    summary = _text(_first(component, "SUMMARY"))
    description = _text(_first(component, "DESCRIPTION"))
    try:
        check_in, all_day = _as_aware(start, zone, check_in_at)
        check_out = _end(component, start, check_in, zone, check_out_at)
    except OverflowError:  # beyond year 9999
        return None
    if check_out is None or check_out <= check_in:
        return None  # nothing to grant (and a stay must end after it starts)
    status = _text(_first(component, "STATUS")).upper()
    transparent = _text(_first(component, "TRANSP")).upper() == "TRANSPARENT"
    email = _EMAIL.search(description)
    phone = _PHONE.search(description)
    return FeedEvent(
        uid=uid[:255],
        summary=summary[:200],
        check_in=check_in,
        check_out=check_out,
        all_day=all_day,
        blocked=bool(_BLOCKED.search(summary)) or transparent,
        cancelled=status == "CANCELLED",
        guest_name=_guest_name(summary),
        guest_email=email.group(0) if email else "",
        guest_phone=phone.group(1).strip()[:40] if phone else "",
    )


def parse_calendar(
    content: bytes | str,
    *,
    timezone: str,
    check_in_at: time = time(15),
    check_out_at: time = time(11),
) -> list[FeedEvent]:
    """Return the events of an iCal document; all-day dates get the property's check-in and
    check-out times in its `timezone`. An event without a UID or a usable range is left out."""
    try:
        calendar = icalendar.Calendar.from_ical(content)
    except (ValueError, IndexError):
        # The library's own words quote the bytes it choked on: not for a host's page.
        raise CalendarError(
            "This is not an iCal calendar: its text does not follow the iCalendar format."
        ) from None
    if calendar.name != "VCALENDAR":
        raise CalendarError("This is not an iCal calendar (no VCALENDAR).")
    zone = ZoneInfo(timezone)
    events = (_event(c, zone, check_in_at, check_out_at) for c in calendar.walk("VEVENT"))
    return [event for event in events if event is not None]
