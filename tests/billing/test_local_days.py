"""Statements and scheduled reports count days and months where the host is: the time zone of
the organization's locations (UTC when they are in several). A session at 23:30 on 31 March
local time is March's, one at 00:30 on 1 April is April's, whatever the hour in UTC; adjacent
periods across a daylight-saving change count every session once."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from billing.models import ReportSchedule, StatementJob
from billing.scheduled_reports import report_send
from billing.services import session_price
from billing.statements import annual_rows, statement_generate, statement_path
from tests.billing.helpers import paid_session, unit_rate
from tests.factories import PropertyFactory

pytestmark = pytest.mark.django_db


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def sessions_csv(organization_id: int, first: date, last: date) -> list[dict]:
    job = StatementJob.objects.create(
        organization_id=organization_id, kind="sessions", date_from=first, date_to=last
    )
    path = statement_path(statement_generate(job_id=job.pk))
    assert path is not None
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/New_York"])
def test_a_month_statement_is_the_hosts_month(zone, prop, charger):
    """Amsterdam is ahead of UTC (00:30 on 1 April is still 31 March in UTC), New York behind
    (23:30 on 31 March is already 1 April in UTC): each session is in its local month."""
    prop.timezone = zone
    prop.save(update_fields=["timezone"])
    unit_rate(prop, valid_from=at(zone, 2026, 1, 1))
    march_last, april_first = (
        paid_session(charger, wh=wh, start=start, minutes=20)[0]
        for wh, start in (
            (1000, at(zone, 2026, 3, 31, 23, 30)),
            (2000, at(zone, 2026, 4, 1, 0, 30)),
        )
    )
    for session in (march_last, april_first):
        session_price(session_id=session.pk)
    org = prop.organization_id

    march = sessions_csv(org, date(2026, 3, 1), date(2026, 3, 31))
    april = sessions_csv(org, date(2026, 4, 1), date(2026, 4, 30))
    assert [r["session_id"] for r in march] == [str(march_last.pk)]
    assert [r["session_id"] for r in april] == [str(april_first.pk)]
    # The times are the host's, with their offset: the day shown is the day counted.
    assert march[0]["started_at"].startswith("2026-03-31T23:30:00")
    assert april[0]["started_at"].startswith("2026-04-01T00:30:00")
    assert datetime.fromisoformat(april[0]["started_at"]) == april_first.started_at

    months = {
        r["month"]: (r["sessions"], r["energy_kwh"])
        for r in annual_rows(org, date(2026, 1, 1), date(2026, 12, 31))
    }
    assert months["2026-03"] == (1, 1) and months["2026-04"] == (1, 2)


def test_two_weeks_either_side_of_a_daylight_saving_change_count_each_session_once(prop, charger):
    """Amsterdam's clocks went back at 03:00 on 25 October 2026 (a 25-hour Sunday): a session
    every hour of that weekend is in exactly one of the two weeks."""
    zone = "Europe/Amsterdam"
    unit_rate(prop, valid_from=at(zone, 2026, 1, 1))
    first = at(zone, 2026, 10, 24, 0, 15).astimezone(ZoneInfo("UTC"))
    sessions = [
        paid_session(charger, wh=100, start=first + timedelta(hours=h), minutes=10)[0]
        for h in range(50)  # Saturday 00:15 to Monday 00:15 local: 49 real hours
    ]
    for session in sessions:
        session_price(session_id=session.pk)
    org = prop.organization_id
    week_to_sunday = sessions_csv(org, date(2026, 10, 19), date(2026, 10, 25))
    week_from_monday = sessions_csv(org, date(2026, 10, 26), date(2026, 11, 1))
    assert len(week_to_sunday) == 49  # Saturday's 24 hours and Sunday's 25
    assert len(week_from_monday) == 1
    ids = [r["session_id"] for r in week_to_sunday + week_from_monday]
    assert sorted(ids) == sorted(str(s.pk) for s in sessions)


def test_a_monthly_report_waits_for_the_hosts_month_to_end(host, prop, charger):
    """New York's March ends at 04:00 UTC on 1 April: the March report is not sent at 01:00 UTC
    (21:00 on 31 March there, the evening's sessions still to come), and is sent after, with
    the late session in it."""
    zone = "America/New_York"
    prop.timezone = zone
    prop.save(update_fields=["timezone"])
    unit_rate(prop, valid_from=at(zone, 2026, 1, 1))
    late, _ = paid_session(charger, wh=3000, start=at(zone, 2026, 3, 31, 22, 0), minutes=30)
    session_price(session_id=late.pk)
    schedule = ReportSchedule.objects.create(
        organization=prop.organization,
        frequency="monthly",
        revenue=True,
        enabled=True,
        last_period_end=date(2026, 3, 1),  # February's was sent
    )
    schedule.recipients.set([host])
    mail.outbox.clear()
    utc = ZoneInfo("UTC")

    assert not report_send(schedule_id=schedule.pk, now=datetime(2026, 4, 1, 1, 0, tzinfo=utc))
    assert report_send(schedule_id=schedule.pk, now=datetime(2026, 4, 1, 4, 30, tzinfo=utc))
    (email,) = mail.outbox
    assert "2026-03-01 to 2026-04-01" in email.subject and f"days in {zone}" in email.body
    files = {name: content for name, content, _ in email.attachments}
    rows = list(csv.DictReader(io.StringIO(files["revenue-20260301-20260401.csv"])))
    march = next(r for r in rows if r["month"] == "2026-03")
    assert (march["sessions"], march["energy_kwh"]) == ("1", "3.000")


def test_an_organization_with_locations_in_two_zones_counts_utc_days(prop, charger):
    """No one local day fits both: the statement says UTC (and each time carries its offset)."""
    from billing.selectors import organization_zone

    assert str(organization_zone(prop.organization_id)) == "Europe/Amsterdam"
    PropertyFactory(organization=prop.organization, timezone="Asia/Tokyo")
    assert str(organization_zone(prop.organization_id)) == "UTC"


def test_a_monthly_payout_is_the_hosts_month(host, prop, charger):
    """Amsterdam's March ends at 22:00 UTC on 31 March (summer time): the run at 00:30 on
    1 April there pays March's earnings, the session that ended at 23:50 on 31 March and not
    the one that ended at 00:10 on 1 April; the page shows the period in Amsterdam's days."""
    from django.test import Client

    from billing.models import Payout
    from billing.selectors import payout_overview
    from billing.services import payouts_run

    zone = "Europe/Amsterdam"
    unit_rate(prop, valid_from=at(zone, 2026, 1, 1))
    march_last, _ = paid_session(charger, wh=10000, start=at(zone, 2026, 3, 31, 23, 20))
    april_first, _ = paid_session(charger, wh=5000, start=at(zone, 2026, 3, 31, 23, 40))
    assert march_last.stopped_at == at(zone, 2026, 3, 31, 23, 50)
    assert april_first.stopped_at == at(zone, 2026, 4, 1, 0, 10)

    now = at(zone, 2026, 4, 1, 0, 30)
    (payout,) = payouts_run(now=now)
    assert payout.period_end == at(zone, 2026, 4, 1)
    assert payout.gross == Decimal("10.00")
    assert payout.reference.endswith("-20260401")
    (overview,) = payout_overview([prop.organization], now)
    assert overview["next_payout"] == date(2026, 5, 1)

    # The host also owns an organization in Tokyo: the pages' own zone is UTC, and each
    # payout's period is still shown in its organization's days.
    from tests.factories import MembershipFactory

    tokyo = PropertyFactory(timezone="Asia/Tokyo")
    MembershipFactory(user=host, organization=tokyo.organization, role="owner")
    page = Client()
    page.force_login(host)
    html = page.get("/billing/payouts/").content.decode()
    assert "31 Mar 2026 – 1 Apr 2026" in html
    assert Payout.objects.count() == 1


def test_a_payout_after_the_organizations_zone_changed_gets_its_own_reference(prop, charger):
    """A location in Tokyo added to an Amsterdam host makes its days UTC: the next period ends at
    UTC midnight on the day the last one ended at Amsterdam's, and both payouts are made."""
    from billing.models import BillingSettings, Payout
    from billing.services import payouts_run

    zone = "Europe/Amsterdam"
    BillingSettings.objects.update_or_create(
        organization=prop.organization, defaults={"payout_period": "daily"}
    )
    unit_rate(prop, valid_from=at(zone, 2026, 1, 1))
    paid_session(charger, wh=10000, start=at(zone, 2026, 3, 30, 12, 0))
    (first,) = payouts_run(now=at(zone, 2026, 3, 31, 0, 30))
    assert first.period_end == at(zone, 2026, 3, 31)

    PropertyFactory(organization=prop.organization, timezone="Asia/Tokyo")
    # Its stop reached us late: booked at 23:40 Amsterdam time, before the first boundary.
    paid_session(charger, wh=5000, start=at(zone, 2026, 3, 30, 23, 10))
    (second,) = payouts_run(now=datetime(2026, 3, 31, 0, 30, tzinfo=ZoneInfo("UTC")))
    assert second.period_end == datetime(2026, 3, 31, tzinfo=ZoneInfo("UTC"))
    assert second.gross == Decimal("5.00") and second.reference != first.reference
    assert Payout.objects.count() == 2
