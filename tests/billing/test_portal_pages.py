"""Portal pages: rates per location, owner-only payouts with breakdown, refunds, statements
with progress, and the self-service subscription page."""

import csv
import io
from datetime import UTC, date, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import Payment, Rate, Refund, StatementJob, Subscription, SubscriptionPlan
from billing.services import payout_create
from tests.billing.helpers import T0, paid_session, unit_rate
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_rates_page_lists_and_creates_rates(host, prop, charger):
    client = login(host)
    assert client.get(f"/billing/properties/{prop.pk}/rates/").status_code == 200
    response = client.post(
        f"/billing/properties/{prop.pk}/rates/",
        {
            "charger": charger.pk,
            "valid_from_0": "01-01-2026",
            "valid_from_1": "00:00",
            "connection_fee": "1.00",
            "energy_price_per_kwh": "0.45",
            "time_price_per_hour": "0",
            "idle_fee_per_minute": "0.10",
            "idle_grace_minutes": "15",
            "idle_fee_cap": "",
            "tax_percent": "21",
            "processing_fee_percent": "0",
            "processing_fee_fixed": "0",
        },
    )
    assert response.status_code == 302, response.content
    rate = Rate.objects.get()
    assert (rate.charger, rate.energy_price_per_kwh) == (charger, Decimal("0.45"))
    # Entered in the location's time (Europe/Amsterdam, UTC+1 in January).
    assert rate.valid_from.astimezone(UTC).isoformat() == "2025-12-31T23:00:00+00:00"
    page = client.get(f"/billing/properties/{prop.pk}/rates/").content.decode()
    assert "CP-TEST-1" in page and "0.4500" in page
    assert "1 Jan 2026, 00:00" in page  # one date format: the location's local time


def test_viewer_sees_rates_but_cannot_change_them(prop):
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    client = login(viewer)
    page = client.get(f"/billing/properties/{prop.pk}/rates/")
    assert page.status_code == 200 and b"Set a new price" not in page.content
    assert client.post(f"/billing/properties/{prop.pk}/rates/", {}).status_code == 403
    outsider = MembershipFactory(role="owner").user
    assert login(outsider).get(f"/billing/properties/{prop.pk}/rates/").status_code == 404


def test_payouts_page_is_for_owners_and_shows_the_breakdown(host, prop, charger):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=12340)
    payout = payout_create(
        organization_id=prop.organization_id, currency="EUR", period_end=T0 + timedelta(days=10)
    )
    client = login(host)
    page = client.get("/billing/payouts/").content.decode()
    assert payout.reference in page and "12.34" in page
    detail = client.get(f"/billing/payouts/{payout.pk}/").content.decode()
    # Each session named as a host knows it (its charger and connector), linked to its page.
    assert f'href="/sessions/{session.pk}/">CP-TEST-1 · connector 1</a>' in detail
    assert "tx " not in detail
    manager = MembershipFactory(organization=prop.organization, role="manager").user
    assert login(manager).get("/billing/payouts/").status_code == 403
    assert login(manager).get(f"/billing/payouts/{payout.pk}/").status_code == 403


def test_owner_refunds_from_the_portal_never_more_than_charged(host, prop, charger):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)
    client = login(host)
    form = client.get(f"/billing/payments/{payment.pk}/refund/")
    assert form.status_code == 200
    too_much = client.post(
        f"/billing/payments/{payment.pk}/refund/",
        {"amount": "10.01", "reason": "x", "idempotency_key": "k1"},
    )
    assert too_much.status_code == 200 and b"At most 10.00 EUR can" in too_much.content
    ok = client.post(
        f"/billing/payments/{payment.pk}/refund/",
        {"amount": "2.50", "reason": "Idle fee while charging", "idempotency_key": "k2"},
    )
    assert ok.status_code == 302
    # A double submit of the same form refunds once.
    client.post(
        f"/billing/payments/{payment.pk}/refund/",
        {"amount": "2.50", "reason": "Idle fee while charging", "idempotency_key": "k2"},
    )
    assert Refund.objects.count() == 1
    assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("2.50")


def test_statement_csv_with_progress(host, prop, charger, django_capture_on_commit_callbacks):
    unit_rate(prop)
    for wh in (1000, 2000, 3000):
        paid_session(charger, wh=wh)
    from billing.services import session_price
    from chargers.models import ChargingSession

    for session in ChargingSession.objects.all():
        session_price(session_id=session.pk)
    client = login(host)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/billing/statements/",
            {
                "organization": prop.organization_id,
                "kind": "sessions",
                "date_from": (T0 - timedelta(days=1)).date(),
                "date_to": (T0 + timedelta(days=5)).date(),
            },
        )
    assert response.status_code == 302
    job = StatementJob.objects.get()
    progress = client.get(f"/billing/statements/{job.pk}/progress/").json()
    assert progress["status"] == "done" and progress["percent"] == 100 and progress["total"] == 3
    download = client.get(progress["download"])
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [r["charged"] for r in rows] == ["1.00", "2.00", "3.00"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/billing/statements/",
            {"organization": prop.organization_id, "kind": "annual", "year": T0.year},
        )
    annual = StatementJob.objects.filter(kind="annual").get()
    text = b"".join(
        client.get(f"/billing/statements/{annual.pk}/download/").streaming_content
    ).decode()
    total = [r for r in csv.DictReader(io.StringIO(text)) if r["month"] == "TOTAL"][0]
    assert (total["sessions"], total["energy_kwh"], total["gross"]) == ("3", "6.000", "6.00")
    outsider = MembershipFactory(role="owner").user
    assert login(outsider).get(f"/billing/statements/{job.pk}/progress/").status_code == 404


def test_statement_streams_in_chunks(
    prop, charger, monkeypatch, django_capture_on_commit_callbacks
):
    """The writer consumes a server-side iterator chunk by chunk (no list of all rows)."""
    from billing import statements
    from billing.services import session_price
    from tests.billing.helpers import finished_session

    unit_rate(prop)
    for _ in range(7):
        session_price(session_id=finished_session(charger, wh=1000).pk)
    monkeypatch.setattr(statements, "CHUNK", 3)
    updates = []
    real = StatementJob.objects.filter

    def spy(*args, **kwargs):
        qs = real(*args, **kwargs)
        original = qs.update

        def update(**values):
            if "processed" in values:
                updates.append(values["processed"])
            return original(**values)

        qs.update = update
        return qs

    monkeypatch.setattr(StatementJob.objects, "filter", spy)
    job = StatementJob.objects.create(
        organization_id=prop.organization_id,
        kind="sessions",
        date_from=date(2000, 1, 1),
        date_to=date(2100, 1, 1),
    )
    statements.statement_generate(job_id=job.pk)
    assert updates == [0, 3, 6, 7]


def test_subscription_self_service_cancel(prop):
    plan = SubscriptionPlan.objects.create(
        property=prop, name="Resident", monthly_fee=Decimal("25")
    )
    sub = Subscription.objects.create(plan=plan, email="r@example.com", started_at=T0)
    client = Client()
    assert client.get("/billing/subscriptions/not-the-key/").status_code == 404
    page = client.get(f"/billing/subscriptions/{sub.manage_key}/")
    assert page.status_code == 200 and b"Cancel subscription" in page.content
    client.post(f"/billing/subscriptions/{sub.manage_key}/", {"action": "cancel"})
    sub.refresh_from_db()
    assert sub.status == "cancelled" and sub.ends_at > sub.cancelled_at
    assert len(sub.manage_key) >= 32


def test_session_cost_page_explains_each_line(host, prop, charger):
    from chargers.models import StatusEvent

    unit_rate(prop, idle_fee_per_minute=Decimal("0.10"), idle_grace_minutes=5)
    session, payment = paid_session(charger, wh=2500, minutes=60)
    StatusEvent.objects.create(
        charger=charger,
        connector_id=1,
        status="SuspendedEV",
        timestamp=session.started_at + timedelta(minutes=40),
    )
    page = login(host).get(f"/billing/sessions/{session.pk}/cost/").content.decode()
    assert "Energy 2.500 kWh" in page and "15 min" in page and "Refund…" in page
    outsider = MembershipFactory(role="owner").user
    assert login(outsider).get(f"/billing/sessions/{session.pk}/cost/").status_code == 404


def test_prices_have_a_menu_entry_an_overview_and_a_currency_aware_form(host, prop, charger):
    """Issue 35 item 4: Prices in the menu, what is in force per location, labels in the
    location's currency, dates typed as the pages show them (not the browser's mm/dd/yyyy)."""
    client = login(host)
    unit_rate(prop, energy_price_per_kwh=Decimal("0.39"))
    home = client.get("/").content.decode()
    assert 'href="/billing/prices/"' in home
    overview = client.get("/billing/prices/").content.decode()
    row = overview.split(f'data-property="{prop.pk}"', 1)[1].split("</tr>", 1)[0]
    assert f"{prop.currency} 0.39" in row and f"/billing/properties/{prop.pk}/rates/" in row
    form = client.get(f"/billing/properties/{prop.pk}/rates/").content.decode()
    assert f"Energy ({prop.currency} per kWh)" in form
    assert 'type="datetime-local"' not in form and 'placeholder="24 Nov 2026"' in form
    bad = client.post(
        f"/billing/properties/{prop.pk}/rates/",
        {"valid_from_0": "13/31/2031", "valid_from_1": "00:00", "energy_price_per_kwh": "1"},
    )
    assert "Write the date as 24 Nov 2026 or 24-11-2026." in bad.content.decode()


def test_the_cost_page_explains_each_line_itself(host, prop, charger):
    """Issue 35 item 9: hosts read how a line is computed on the page, not in a repository file."""
    unit_rate(prop)
    session, _payment = paid_session(charger, wh=5000)
    page = login(host).get(f"/billing/sessions/{session.pk}/cost/").content.decode()
    assert "docs/" not in page and ".md" not in page
    explained = page.split('id="how-computed"', 1)[1]
    assert "kWh delivered × the price per kWh" in explained and "SuspendedEVSE" in explained


def test_the_statement_form_sent_again_while_it_is_prepared_is_the_same_statement(host, prop):
    """The form submitted twice (a double click, a reload): one job and a message that says so;
    once it is ready, asking again makes a new one (the figures may have changed)."""
    client = login(host)
    form = {
        "organization": prop.organization_id,
        "kind": "sessions",
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
    }
    client.post("/billing/statements/", form)  # the task waits for this test's commit: queued
    again = client.post("/billing/statements/", form, follow=True)
    job = StatementJob.objects.get()
    assert "This statement is already being prepared" in again.content.decode()
    StatementJob.objects.filter(pk=job.pk).update(status=StatementJob.Status.DONE)
    client.post("/billing/statements/", form)
    assert StatementJob.objects.count() == 2
