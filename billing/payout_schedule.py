"""When a host's payouts are made (pure: no Django).

An organization's payout period (billing.BillingSettings.payout_period: daily, weekly on Mondays,
monthly on the 1st) cuts its earnings at midnight in the organization's time zone (the zone its
statements count days in, billing.selectors.organization_zone; UTC when its locations are in
several), so a monthly payout is the statement's month. The `billing.payouts_run` task (beat,
every BILLING_PAYOUT_RUN_SECONDS) pays out everything booked before the latest boundary, so the
next payout is made at the first boundary after now.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAILY, WEEKLY, MONTHLY = "daily", "weekly", "monthly"

SCHEDULE_TEXT = {
    DAILY: "Daily, for the day before",
    WEEKLY: "Weekly on Mondays, for the week before",
    MONTHLY: "Monthly on the 1st, for the month before",
}


def _midnight(day: date, zone: tzinfo) -> datetime:
    # The day's start in `zone`: a day of a daylight-saving change has its 23 or 25 hours.
    return datetime.combine(day, time.min, tzinfo=zone)


def period_end_for(period: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """Return the most recent period boundary (midnight in `zone`) at or before `now`."""
    day = now.astimezone(zone).date()
    if period == WEEKLY:
        day -= timedelta(days=day.weekday())
    elif period != DAILY:
        day = day.replace(day=1)
    return _midnight(day, zone)


def next_period_end(period: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """Return the first period boundary (midnight in `zone`) strictly after `now`: the next
    payout."""
    current = period_end_for(period, now, zone).date()
    if period == DAILY:
        return _midnight(current + timedelta(days=1), zone)
    if period == WEEKLY:
        return _midnight(current + timedelta(days=7), zone)
    if current.month == 12:
        return _midnight(current.replace(year=current.year + 1, month=1), zone)
    return _midnight(current.replace(month=current.month + 1), zone)


def next_payout_at(
    period: str, now: datetime, *, due_at_last_boundary: bool, zone: tzinfo = UTC
) -> datetime:
    """Return the period end of the next payout. `due_at_last_boundary`: what was booked before
    the boundary that just passed is payable (net above zero and the minimum) and no payout
    holds it yet, so the next run (within its interval) pays it at that boundary."""
    if due_at_last_boundary:
        return period_end_for(period, now, zone)
    return next_period_end(period, now, zone)
