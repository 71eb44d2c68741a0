"""Pure display helpers shared by the portal apps (no Django imports)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def duration_text(value: timedelta | None) -> str:
    """Return a duration as people read it: "50 s", "7 min", "1 h 05 min" (never "0:00:50.063000")."""
    if value is None:
        return "–"
    seconds = max(int(value.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


# -- times and dates: one format on every page, CSV and email (issue 35 items 6 and 7) ------------
# A time is always shown in a named zone (the location's, or the viewer's when a page spans
# locations) with its label, e.g. "24 Nov 2026, 08:45 CET"; CSVs carry the UTC offset instead.


def zone_or_utc(name: str | None) -> ZoneInfo:
    """Return the zone called `name`, or UTC when it is empty or unknown."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(value: datetime, zone: ZoneInfo) -> datetime:
    if value.tzinfo is None:  # naive values are UTC throughout this project (USE_TZ)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone)


def zone_label(value: datetime, zone: ZoneInfo) -> str:
    """The zone's name at that moment as people read it: CET, CEST, UTC, or +03 where the zone
    has no letters."""
    return _local(value, zone).tzname() or "UTC"


def date_text(value: date | datetime | None, zone: ZoneInfo | None = None) -> str:
    """24 Nov 2026 (the day in `zone` for a datetime)."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = _local(value, zone or ZoneInfo("UTC"))
    return f"{value.day} {value:%b %Y}"


def time_text(
    value: datetime | None, zone: ZoneInfo, *, seconds: bool = False, milliseconds: bool = False
) -> str:
    """08:45 CET (08:45:11 CET with seconds, 08:45:11.123 CET with milliseconds), 24 h clock."""
    if value is None:
        return "–"
    local = _local(value, zone)
    clock = f"{local:%H:%M}"
    if seconds or milliseconds:
        clock += f":{local:%S}"
    if milliseconds:
        clock += f".{local.microsecond // 1000:03d}"
    return f"{clock} {zone_label(value, zone)}"


def datetime_text(
    value: datetime | None, zone: ZoneInfo, *, seconds: bool = False, milliseconds: bool = False
) -> str:
    """24 Nov 2026, 08:45 CET."""
    if value is None:
        return "–"
    clock = time_text(value, zone, seconds=seconds, milliseconds=milliseconds)
    return f"{date_text(value, zone)}, {clock}"


def csv_datetime(value: datetime | None, zone: ZoneInfo) -> str:
    """2026-11-24T08:45:11+01:00: local time with its offset, read by spreadsheets and scripts."""
    if value is None:
        return ""
    return _local(value, zone).replace(microsecond=0).isoformat()
