"""Issue 51 item 3: the payouts page shows the host's balance from the ledger, its payout
schedule and the next payout date; Payouts sits in the main navigation; another organization's
owner sees nothing of it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing import ledger
from billing.models import BillingSettings, LedgerTransaction, Payout
from billing.payout_schedule import next_payout_at, next_period_end, period_end_for
from billing.selectors import host_balance, payout_overview
from billing.services import payout_create
from tests.factories import MembershipFactory

K = LedgerTransaction.Kind


@pytest.mark.parametrize(
    ("period", "now", "expected"),
    [
        ("daily", datetime(2026, 11, 25, 13, 0, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)),
        ("daily", datetime(2026, 11, 25, 0, 0, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)),
        # Wednesday -> next Monday; on a Monday at midnight -> the Monday after.
        ("weekly", datetime(2026, 11, 25, 13, 0, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)),
        ("weekly", datetime(2026, 11, 30, 0, 0, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC)),
        ("monthly", datetime(2026, 11, 25, 13, 0, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("monthly", datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("monthly", datetime(2026, 12, 1, 0, 0, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_next_payout_is_the_first_boundary_after_now(period, now, expected):
    assert next_period_end(period, now) == expected
    # The payout run then cuts exactly there: the next boundary is a period end.
    assert period_end_for(period, expected) == expected
    assert period_end_for(period, now) < expected


def _charge(org_id, key, amount, at, kind=K.GUEST_CHARGE, currency="EUR"):
    ledger.post(
        key=key,
        kind=kind,
        organization_id=org_id,
        currency=currency,
        amount=Decimal(amount),
        occurred_at=at,
    )


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_payouts_page_shows_the_ledger_balance_schedule_and_next_date(host, prop):
    org = prop.organization
    BillingSettings.objects.create(organization=org, payout_period="weekly")
    earlier = timezone.now() - timedelta(days=40)
    _charge(org.pk, "c1", "30.00", earlier)
    _charge(org.pk, "f1", "1.50", earlier, kind=K.PROCESSING_FEE)
    payout = payout_create(
        organization_id=org.pk, currency="EUR", period_end=earlier + timedelta(days=1)
    )
    assert payout is not None and payout.net == Decimal("28.50")
    # Earned since the payout: not yet paid out.
    _charge(org.pk, "c2", "12.40", timezone.now() - timedelta(hours=1))
    _charge(org.pk, "r2", "2.00", timezone.now() - timedelta(minutes=30), kind=K.REFUND)
    assert host_balance(org.pk, "EUR") == Decimal("10.40")

    page = _login(host).get("/billing/payouts/").content.decode()
    balance = page.split('data-field="balance"')[1].split("</dd>")[0]
    assert "<strong>10.40 EUR</strong>" in balance
    transit = page.split('data-field="in-transit"')[1].split("</dd>")[0]
    assert ">28.50 EUR" in transit
    assert "Weekly on Mondays" in page.split('data-field="schedule"')[1].split("</dd>")[0]
    nxt = next_period_end("weekly", timezone.now()).date()
    assert f"{nxt.day} {nxt:%b %Y}" in page.split('data-field="next-payout"')[1].split("</dd>")[0]

    # Paid: no longer on its way.
    Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.PAID)
    page = _login(host).get("/billing/payouts/").content.decode()
    assert 'data-field="in-transit"' not in page


@pytest.mark.django_db
def test_another_organizations_owner_sees_nothing_of_this_balance(host, prop):
    _charge(prop.organization_id, "c1", "77.70", timezone.now())
    outsider = MembershipFactory(role="owner").user
    page = _login(outsider).get("/billing/payouts/").content.decode()
    assert "77.70" not in page
    assert f'data-organization="{prop.organization_id}"' not in page
    # Their own balance is empty and their schedule the platform default (monthly).
    assert "nothing earned yet" in page and "Monthly on the 1st" in page
    # The overview reads only the organizations asked for (host:1: never matches host:12:).
    other = outsider.memberships.get().organization
    assert payout_overview([other], timezone.now())[0]["balances"] == []


@pytest.mark.django_db
def test_payouts_is_in_the_main_navigation_for_owners_only(host, prop):
    nav = _login(host).get("/billing/payouts/").content.decode().split('id="mainnav"')[1]
    nav = nav.split("</nav>")[0]
    top = nav.split("<details")[0]  # before the first menu group: beside Prices, not in Account
    assert 'href="/billing/payouts/"' in top and 'aria-current="page"' in top.split("Prices</a>")[1]
    manager = MembershipFactory(organization=prop.organization, role="manager").user
    assert "/billing/payouts/" not in _login(manager).get("/").content.decode()


@pytest.mark.django_db
def test_recent_payments_name_a_drivers_payment_driver_and_a_guests_guest(
    host, prop, charger, django_assert_max_num_queries
):
    from authorization.models import Token
    from tests.billing.helpers import paid_session, unit_rate
    from tests.factories import TokenFactory

    unit_rate(prop)
    guest_session, guest_pay = paid_session(charger, wh=5000)
    guest_session.token = TokenFactory(organization=prop.organization, type=Token.Type.GUEST)
    guest_session.save(update_fields=["token"])
    driver_session, driver_pay = paid_session(charger, wh=7000)
    driver_session.token = TokenFactory(
        organization=prop.organization,
        type=Token.Type.GUEST,
        label=Token.DRIVER_SESSION_LABEL,
    )
    driver_session.save(update_fields=["token"])
    client = _login(host)
    client.get("/billing/payouts/")  # warm the session and the user's rows
    with django_assert_max_num_queries(20) as counted:
        page = client.get("/billing/payouts/").content.decode()
    for pay, words in ((guest_pay, "Guest card"), (driver_pay, "Driver account")):
        row = page.split(f'data-payment="{pay.pk}"')[1].split("</tr>")[0]
        assert f'data-field="payer">{words}<' in row
        assert f"/sessions/{pay.session_id}/" in row  # named by charger and start, linked
    # Three more payments cost no more queries (the payer is read with the payment).
    for _ in range(3):
        more, _pay = paid_session(charger, wh=1000)
        more.token = TokenFactory(organization=prop.organization, type=Token.Type.GUEST)
        more.save(update_fields=["token"])
    with django_assert_max_num_queries(len(counted.captured_queries)):
        client.get("/billing/payouts/")


def test_a_payout_due_at_the_boundary_that_just_passed_is_the_next_one():
    now = datetime(2026, 12, 1, 0, 20, tzinfo=UTC)  # the run has not passed since midnight
    assert next_payout_at("monthly", now, due_at_last_boundary=True) == datetime(
        2026, 12, 1, tzinfo=UTC
    )
    assert next_payout_at("monthly", now, due_at_last_boundary=False) == datetime(
        2027, 1, 1, tzinfo=UTC
    )


@pytest.mark.django_db
def test_next_payout_follows_the_payout_runs_rule(prop):
    org = prop.organization
    terms = BillingSettings.objects.create(
        organization=org, payout_period="daily", minimum_payout=Decimal("5.00")
    )
    now = timezone.now()
    today = period_end_for("daily", now)

    def next_date():
        return payout_overview([org], now)[0]["next_payout"]

    # Booked today: paid at tomorrow's boundary.
    _charge(org.pk, "today", "9.00", now)
    assert next_date() == (today + timedelta(days=1)).date()
    # Booked before today's boundary and not paid yet: the next run pays it today.
    _charge(org.pk, "yesterday", "6.00", today - timedelta(hours=2))
    assert next_date() == today.date()
    # ... unless it is below the minimum payout: it waits.
    terms.minimum_payout = Decimal("6.01")
    terms.save()
    assert next_date() == (today + timedelta(days=1)).date()
    terms.minimum_payout = Decimal("5.00")
    terms.save()
    # Once the run made today's payout, the next one is tomorrow (a late charge waits too).
    assert payout_create(organization_id=org.pk, currency="EUR", period_end=today) is not None
    _charge(org.pk, "late", "7.00", today - timedelta(hours=1))
    assert next_date() == (today + timedelta(days=1)).date()
