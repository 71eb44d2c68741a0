"""The reporting window: the years uptime is reported for (docs/reliability.md, "Reporting
window"). A period asked of the uptime API, a month of the Uptime tab and an exclusion's dates
lie inside it; anything outside is refused where it enters, with a 400 naming the field.

Five calendar years back (a NEVI report's records are kept five years) through the end of next
year (planned maintenance may be entered ahead). Pure: `now` is given.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

YEARS_BACK = 5
YEARS_AHEAD = 1


def bounds(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The window's first and first-after moments in the zone `tz`."""
    year = now.astimezone(tz).year
    return (
        datetime(year - YEARS_BACK, 1, 1, tzinfo=tz),
        datetime(year + YEARS_AHEAD + 1, 1, 1, tzinfo=tz),
    )


def years(now: datetime, tz: tzinfo) -> tuple[int, int]:
    """The first and the last year inside the window."""
    first, after = bounds(now, tz)
    return first.year, after.year - 1


def outside(moment: datetime, now: datetime, tz: tzinfo) -> str | None:
    """Why `moment` is outside the window, in words; None: it is inside."""
    first, after = bounds(now, tz)
    if first <= moment <= after:
        return None
    return f"Give a moment from {first.year} through {after.year - 1} (the reporting window)."
