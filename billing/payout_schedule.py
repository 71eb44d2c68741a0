"""When a host's payouts are made (pure: no Django).

An organization's payout period (billing.BillingSettings.payout_period: daily, weekly on Mondays,
monthly on the 1st) cuts its earnings at UTC midnight. The `billing.payouts_run` task (beat, every
BILLING_PAYOUT_RUN_SECONDS) pays out everything booked before the latest boundary, so the next
payout is made at the first boundary after now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAILY, WEEKLY, MONTHLY = "daily", "weekly", "monthly"

SCHEDULE_TEXT = {
    DAILY: "Daily, for the day before",
    WEEKLY: "Weekly on Mondays, for the week before",
    MONTHLY: "Monthly on the 1st, for the month before",
}


def period_end_for(period: str, now: datetime) -> datetime:
    """Return the most recent period boundary (UTC midnight) at or before `now`."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == DAILY:
        return day
    if period == WEEKLY:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period_end(period: str, now: datetime) -> datetime:
    """Return the first period boundary (UTC midnight) strictly after `now`: the next payout."""
    current = period_end_for(period, now)
    if period == DAILY:
        return current + timedelta(days=1)
    if period == WEEKLY:
        return current + timedelta(days=7)
    if current.month == 12:
        return current.replace(year=current.year + 1, month=1)
    return current.replace(month=current.month + 1)


def next_payout_at(period: str, now: datetime, *, due_at_last_boundary: bool) -> datetime:
    """Return the period end of the next payout. `due_at_last_boundary`: what was booked before
    the boundary that just passed is payable (net above zero and the minimum) and no payout
    holds it yet, so the next run (within its interval) pays it at that boundary."""
    if due_at_last_boundary:
        return period_end_for(period, now)
    return next_period_end(period, now)
