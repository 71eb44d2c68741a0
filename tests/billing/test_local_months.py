"""A plan's months and the annual statement's year are the host's, not UTC's: at a New York
location, 22:00 on 31 January is still January (03:00 on 1 February in UTC)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from billing.models import SessionCharge, StatementJob, Subscription, SubscriptionPlan
from billing.services import subscriptions_collect
from tests.billing.helpers import paid_session, unit_rate
from tests.drivers.conftest import save_card, sign_up

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")


@pytest.fixture
def new_york(prop):
    prop.timezone = "America/New_York"
    prop.save(update_fields=["timezone"])
    return prop


def test_a_plan_bought_on_the_last_evening_of_a_local_month_is_paid_to_its_end(new_york):
    plan = SubscriptionPlan.objects.create(
        property=new_york, name="Resident", monthly_fee=Decimal("25.00")
    )
    client = Client()
    with time_machine.travel(datetime(2026, 1, 31, 22, 0, tzinfo=NY), tick=False):
        sign_up(client, "evening@example.com")
        save_card(client)
        client.post(f"/driver/plans/{plan.pk}/subscribe/")
    subscription = Subscription.objects.get()
    # Before: the first month ran to 1 March 00:00 UTC (February's in UTC), a month for free.
    assert subscription.paid_until == datetime(2026, 2, 1, tzinfo=NY)
    subscriptions_collect(now=datetime(2026, 2, 1, 1, 0, tzinfo=NY))
    february = subscription.invoices.get(period_start=subscription.paid_until)
    assert (february.status, february.period_end) == ("paid", datetime(2026, 3, 1, tzinfo=NY))


def test_included_kwh_start_again_on_the_local_first_of_the_month(new_york, charger):
    unit_rate(new_york, valid_from=datetime(2025, 1, 1, tzinfo=NY))
    plan = SubscriptionPlan.objects.create(
        property=new_york, name="Resident", included_kwh=Decimal("10")
    )
    Subscription.objects.create(
        plan=plan, email="r@example.com", started_at=datetime(2025, 12, 1, tzinfo=NY)
    )
    january, _ = paid_session(
        charger, wh=8000, start=datetime(2026, 1, 31, 22, 0, tzinfo=NY), email="r@example.com"
    )
    february, _ = paid_session(
        charger, wh=8000, start=datetime(2026, 2, 1, 10, 0, tzinfo=NY), email="r@example.com"
    )
    used = dict(SessionCharge.objects.values_list("session_id", "included_kwh_used"))
    # Before: both in February in UTC, so the second had 2 of the 10 included kWh left.
    assert (used[january.pk], used[february.pk]) == (Decimal("8"), Decimal("8"))


def test_the_annual_statement_is_this_year_where_the_host_is(new_york, host):
    client = Client()
    with time_machine.travel(datetime(2026, 12, 31, 22, 0, tzinfo=NY), tick=False):
        client.force_login(host)
        response = client.post(
            "/billing/statements/", {"organization": new_york.organization_id, "kind": "annual"}
        )
    assert response.status_code == 302
    job = StatementJob.objects.get()
    # Before: 2027 (it was already 1 January in UTC), a year with nothing in it yet.
    assert (job.date_from, job.date_to) == (date(2026, 1, 1), date(2026, 12, 31))
