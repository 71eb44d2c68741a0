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
from datetime import date, datetime, time, timedelta
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


def parse_calendar(
    content: bytes | str,
    *,
    timezone: str,
    check_in_at: time = time(15),
    check_out_at: time = time(11),
) -> list[FeedEvent]:
    """Return the events of an iCal document; all-day dates get the property's check-in and
    check-out times in its `timezone`."""
    try:
        calendar = icalendar.Calendar.from_ical(content)
    except (ValueError, IndexError) as exc:
        raise CalendarError(f"This is not an iCal calendar ({str(exc)[:120]}).") from None
    if calendar.name != "VCALENDAR":
        raise CalendarError("This is not an iCal calendar (no VCALENDAR).")
    zone = ZoneInfo(timezone)
    events = []
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID", "")).strip()
        start = component.get("DTSTART")
        if not uid or start is None:
            continue
        summary = str(component.get("SUMMARY", "")).strip()
        description = str(component.get("DESCRIPTION", ""))
        check_in, all_day = _as_aware(start.dt, zone, check_in_at)
        end = component.get("DTEND")
        if end is not None:
            check_out, _ = _as_aware(end.dt, zone, check_out_at)
        elif component.get("DURATION") is not None:
            check_out = check_in + component.get("DURATION").dt
        else:
            # RFC 5545 §3.6.1: a date without an end lasts the day; a date-time, no time at all.
            check_out = check_in + (timedelta(days=1) if all_day else timedelta(0))
        if check_out <= check_in:
            continue  # nothing to grant (and a stay must end after it starts)
        status = str(component.get("STATUS", "")).upper()
        transparent = str(component.get("TRANSP", "")).upper() == "TRANSPARENT"
        email = _EMAIL.search(description)
        phone = _PHONE.search(description)
        events.append(
            FeedEvent(
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
        )
    return events
