"""Scheduled reports: the beat task emails one organization's uptime, KPIs and revenue as CSV
files, with that organization's rows only, to the members its owner chose, once a period."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from billing import scheduled_reports, tasks
from billing.models import ReportSchedule
from chargers.models import Connector
from tests.billing.helpers import T0, paid_session, unit_rate
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows_of(content: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content)))


def test_the_beat_task_emails_one_organizations_csvs_to_its_chosen_members(host, prop, charger):
    # Mid-day, so the session (30 min) ends on the day it started whatever the clock says.
    day = (T0 - timedelta(days=10)).replace(hour=10, minute=0, second=0)
    for c in (charger,):
        Connector.objects.create(charger=c, connector_id=1, status="Available")
    unit_rate(prop)
    paid_session(charger, wh=2500, start=day)
    reader = MembershipFactory(organization=prop.organization, role="viewer").user
    MembershipFactory(organization=prop.organization, role="manager")  # not chosen
    # Another organization, with a session the same day and its own schedule off.
    other_prop = PropertyFactory()
    other_charger = ChargerFactory(property=other_prop, station_id="OTHER-1")
    Connector.objects.create(charger=other_charger, connector_id=1, status="Available")
    unit_rate(other_prop)
    paid_session(other_charger, wh=9000, start=day)
    outsider = MembershipFactory(organization=other_prop.organization, role="owner").user

    page = login(host)
    url = f"/billing/reports/{prop.organization_id}/"
    assert page.get(url).status_code == 200
    form = {
        "frequency": "daily",
        "uptime": "on",
        "kpis": "on",
        "revenue": "on",
        "enabled": "on",
        "recipients": [host.pk, reader.pk],
    }
    # Only the organization's members can receive its figures.
    refused = page.post(url, {**form, "recipients": [host.pk, outsider.pk]})
    assert refused.status_code == 400 and not ReportSchedule.objects.exists()
    assert page.post(url, form).status_code == 302
    assert login(outsider).get(url).status_code == 404
    assert login(reader).post(url, form).status_code in (403, 404)

    assert settings.CELERY_BEAT_SCHEDULE["billing-reports"]["task"] == tasks.reports_send_task.name
    today = day.date() + timedelta(days=1)  # the day after: yesterday's report is due
    assert scheduled_reports.reports_send(today=today) == 1
    (email,) = mail.outbox
    assert sorted(email.to) == sorted([host.email, reader.email])
    files = {name: content for name, content, _ in email.attachments}
    stamp = f"{day:%Y%m%d}-{today:%Y%m%d}"
    assert set(files) == {f"uptime-{stamp}.csv", f"kpis-{stamp}.csv", f"revenue-{stamp}.csv"}
    uptime = rows_of(files[f"uptime-{stamp}.csv"])
    assert {r["station_id"] for r in uptime} == {"CP-TEST-1"}
    assert all(r["sessions"] in ("0", "1") for r in uptime)
    assert sum(int(r["sessions"]) for r in uptime) == 1
    kpis = rows_of(files[f"kpis-{stamp}.csv"])
    assert {r["station_id"] for r in kpis} == {"CP-TEST-1"}
    revenue = rows_of(files[f"revenue-{stamp}.csv"])
    total = next(r for r in revenue if r["month"] == "TOTAL")
    assert (total["sessions"], total["energy_kwh"], total["gross"]) == ("1", "2.500", "2.50")

    # Sent once per period, however often the task runs; the next day's goes the next day.
    assert scheduled_reports.reports_send(today=today) == 0
    assert len(mail.outbox) == 1
    assert scheduled_reports.reports_send(today=today + timedelta(days=1)) == 1
    assert len(mail.outbox) == 2


def test_periods():
    from datetime import date

    from billing.report_periods import due, last_period

    wednesday = date(2026, 3, 11)
    assert last_period("daily", wednesday) == (date(2026, 3, 10), wednesday)
    assert last_period("weekly", wednesday) == (date(2026, 3, 2), date(2026, 3, 9))
    assert last_period("monthly", wednesday) == (date(2026, 2, 1), date(2026, 3, 1))
    assert last_period("monthly", date(2026, 1, 1)) == (date(2025, 12, 1), date(2026, 1, 1))
    assert due("weekly", wednesday, date(2026, 3, 9)) is None
    assert due("weekly", wednesday, date(2026, 3, 2)) == (date(2026, 3, 2), date(2026, 3, 9))
    assert due("monthly", wednesday, None) == (date(2026, 2, 1), date(2026, 3, 1))
