"""The period a scheduled report covers (pure): the last full day, ISO week or calendar month
before `today`, and whether it is still to be sent (docs/operations.md "Scheduled reports")."""

from __future__ import annotations

from datetime import date, timedelta


def last_period(frequency: str, today: date) -> tuple[date, date]:
    """[start, end) of the last full period of `frequency` (daily, weekly, monthly) before today."""
    if frequency == "daily":
        return today - timedelta(days=1), today
    if frequency == "weekly":
        end = today - timedelta(days=today.weekday())  # this week's Monday
        return end - timedelta(days=7), end
    end = today.replace(day=1)
    return (end - timedelta(days=1)).replace(day=1), end


def due(frequency: str, today: date, last_end: date | None) -> tuple[date, date] | None:
    """The period to send now, or None when it was sent already."""
    start, end = last_period(frequency, today)
    if last_end is not None and last_end >= end:
        return None
    return start, end
