"""Pure display helpers shared by the portal apps (no Django imports)."""

from __future__ import annotations

from datetime import timedelta


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
