"""The receipt as a real receipt (issue 51 item 5): the seller (the host) with its name and VAT
number, a number per seller without gaps, the business driver's details, and a PDF; the receipt's
amount from the same function as the live cost."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from billing.models import BillingSettings, Receipt
from billing.receipts import receipt_issue
from chargers.models import ChargingSession
from guest import services
from guest.live import cost_so_far
from guest.models import GuestSession
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.guest.conftest import make_online
from tests.guest.test_views_flow import FORM, accepted  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accepted")]


def _start_and_pay(client, charger) -> GuestSession:
    """What the guest's browser does (tests.guest.test_views_flow.start_and_pay), any number
    of times."""
    from billing.models import SandboxIntent

    response = client.post(f"/s/{charger.station_id}/start/", FORM)
    gs = GuestSession.objects.latest("pk")
    assert response["Location"] == f"/s/pay/{gs.key}/"
    intent = SandboxIntent.objects.get(pk=gs.payment_reference)
    client.post(
        f"/billing/sandbox/v1/payment_intents/{intent.pk}/confirm",
        {"client_secret": intent.client_secret, "payment_method": "pm_card_visa"},
    )
    client.get(f"/s/pay/{gs.key}/return/?payment_intent={intent.pk}")
    return gs


def _charge(client, charger, tx: int, wh: int = 7500) -> GuestSession:
    """A guest pays, charges `wh` and the session finishes (priced, captured)."""
    gs = _start_and_pay(client, charger)
    started = timezone.now() - timedelta(hours=1)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=tx,
        id_tag=gs.id_tag,
        started_at=started,
        meter_start_wh=0,
    )
    services.guest_session_link(session_id=session.pk)
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed", stopped_at=started + timedelta(minutes=30), meter_stop_wh=wh
    )
    session.refresh_from_db()
    live = cost_so_far(GuestSession.objects.get(pk=gs.pk))
    services.guest_session_finish(session_id=session.pk)
    gs.refresh_from_db()
    gs.live_cost = live
    return gs


def _estimated_then_charger_stop(gs: GuestSession, tx: int, wh: int, *, later=timedelta(0)):
    """The session was closed on our estimate; the charger's own StopTransaction (`wh` on its
    register) arrives now. Returns what the stop stored (the session, or None)."""
    from decimal import Decimal

    from chargers.sessions.closing import StopRequest, close_orm

    session = gs.charging_session
    return close_orm(
        StopRequest(
            charger_id=session.charger_id,
            transaction_id=tx,
            meter_stop=Decimal(wh),
            stopped_at=session.stopped_at + later,
            reason="EVDisconnected",
        )
    )


@pytest.fixture
def seller(guest_charger):
    org = guest_charger.property.organization
    BillingSettings.objects.create(
        organization=org, seller_name="Harbour Hotel B.V.", vat_number="NL123456789B01"
    )
    return org


def test_the_receipt_names_the_seller_its_vat_number_and_a_number(
    client, guest_charger, rate, seller
):
    gs = _charge(client, guest_charger, 501)
    body = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert '<span class="receipt-number" id="receipt-number">R-000001</span>' in body
    assert "Harbour Hotel B.V." in body and "VAT number NL123456789B01" in body
    receipt = Receipt.objects.get(session=gs.charging_session)
    assert (receipt.organization_id, receipt.number) == (seller.pk, 1)
    # The live cost and the receipt come from one function: the same amount.
    total = body.split('id="total">')[1].split("<")[0]
    assert gs.live_cost == f"{total.split(' ')[1]} {total.split(' ')[0]}"


def test_each_seller_counts_its_own_receipts_without_gaps(client, guest_charger, rate, seller):
    first = _charge(client, guest_charger, 601)
    # A receipt asked again keeps its number; a rolled-back issue gives its number back.
    assert receipt_issue(session_id=first.charging_session_id).number == 1
    second = _charge(client, guest_charger, 602)
    Receipt.objects.filter(session_id=second.charging_session_id).delete()
    BillingSettings.objects.filter(organization=seller).update(next_receipt_number=2)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert receipt_issue(session_id=second.charging_session_id).number == 2
        raise RuntimeError("the surrounding write failed")
    assert receipt_issue(session_id=second.charging_session_id).number == 2
    # Another host's charger: its own series, from 1.
    other_site = PropertyFactory(name="Dune Inn", currency="EUR", timezone="Europe/Amsterdam")
    other = make_online(ChargerFactory(property=other_site, station_id="DUNE-1"))
    type(rate).objects.create(
        property=other_site,
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=rate.energy_price_per_kwh,
    )
    third = _charge(client, other, 603)
    assert Receipt.objects.get(session_id=third.charging_session_id).number == 1
    numbers = sorted(Receipt.objects.filter(organization=seller).values_list("number", flat=True))
    assert numbers == [1, 2]


def test_nothing_sold_gets_no_receipt_number(client, guest_charger, rate, seller):
    # A session no rate priced (no charge stored) and one still charging: nothing to receipt.
    unpriced = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=2,
        transaction_id=701,
        id_tag="HOSTCARD",
        started_at=timezone.now() - timedelta(hours=1),
        stopped_at=timezone.now(),
        meter_start_wh=0,
        meter_stop_wh=1000,
        status="completed",
    )
    assert receipt_issue(session_id=unpriced.pk) is None
    gs = _start_and_pay(client, guest_charger)
    assert client.get(f"/s/receipt/{gs.key}/pdf/").status_code == 404
    assert not Receipt.objects.exists()
    assert BillingSettings.objects.get(organization=seller).next_receipt_number == 1


def test_the_pdf_carries_the_number_the_seller_and_the_total(client, guest_charger, rate, seller):
    gs = _charge(client, guest_charger, 801)
    response = client.get(f"/s/receipt/{gs.key}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert 'filename="receipt-R-000001.pdf"' in response["Content-Disposition"]
    pdf = response.content
    assert pdf.startswith(b"%PDF-")
    for text in (b"Receipt R-000001", b"Harbour Hotel B.V.", b"NL123456789B01", b"Total"):
        assert text in pdf, text
    page = client.get(f"/s/receipt/{gs.key}/").content.decode()
    total = page.split('id="total">')[1].split("<")[0]
    assert total.encode() in pdf  # the same amount as the page
    assert client.get("/s/receipt/not-a-key/pdf/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_receipts_issued_at_once_share_no_number(client, guest_charger, rate, seller):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections: PostgreSQL")
    sessions = [_charge(client, guest_charger, 900 + n).charging_session_id for n in range(8)]
    Receipt.objects.all().delete()
    BillingSettings.objects.filter(organization=seller).update(next_receipt_number=1)
    barrier = threading.Barrier(len(sessions))
    errors: list[BaseException] = []

    def issue(session_id: int) -> None:
        try:
            barrier.wait(timeout=60)
            receipt_issue(session_id=session_id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    numbers = sorted(Receipt.objects.filter(organization=seller).values_list("number", flat=True))
    assert numbers == list(range(1, len(sessions) + 1))


def test_the_owner_sets_the_sellers_name_and_vat_number_in_the_portal(client, guest_charger, rate):
    org = guest_charger.property.organization
    owner = MembershipFactory(organization=org, role="owner").user
    manager = MembershipFactory(organization=org, role="manager").user
    host = Client()
    host.force_login(owner)
    page = host.get("/billing/payouts/").content.decode()
    assert 'id="receipt-seller"' in page and f'id="id_seller-{org.pk}-vat_number"' in page
    url = f"/billing/seller/{org.pk}/"
    bad = host.post(url, {f"seller-{org.pk}-vat_number": "123"}, follow=True).content.decode()
    assert "A VAT number starts with the country&#x27;s two letters" in bad
    assert not BillingSettings.objects.filter(organization=org).exclude(vat_number="").exists()
    host.post(
        url,
        {
            f"seller-{org.pk}-seller_name": " Harbour  B.V. ",
            f"seller-{org.pk}-vat_number": "nl 1234.56789-b01",
        },
    )
    row = BillingSettings.objects.get(organization=org)
    assert (row.seller_name, row.vat_number) == ("Harbour B.V.", "NL123456789B01")
    other = Client()
    other.force_login(manager)
    assert other.post(url, {f"seller-{org.pk}-seller_name": "Mine"}).status_code == 403
    gs = _charge(client, guest_charger, 1001)
    receipt = Receipt.objects.get(session_id=gs.charging_session_id)
    assert (receipt.seller_name, receipt.seller_vat_number) == ("Harbour B.V.", "NL123456789B01")
    # An issued receipt keeps its details when the host changes them.
    host.post(url, {f"seller-{org.pk}-seller_name": "New Name"})
    receipt.refresh_from_db()
    assert receipt.seller_name == "Harbour B.V."


def test_support_finds_a_receipt_in_admin(client, guest_charger, rate, seller):
    from tests.factories import UserFactory

    gs = _charge(client, guest_charger, 1201)
    agent = Client()
    agent.force_login(UserFactory(username="agent@example.com", is_staff=True, is_superuser=True))
    page = agent.get("/admin/billing/receipt/", {"q": guest_charger.station_id}).content.decode()
    assert "R-000001" in page and "Harbour Hotel B.V." in page
    receipt = Receipt.objects.get(session_id=gs.charging_session_id)
    change = agent.get(f"/admin/billing/receipt/{receipt.pk}/change/").content.decode()
    assert "NL123456789B01" in change and "<h2>Receipt R-000001</h2>" in change


def test_a_receipt_keeps_what_it_said_when_the_chargers_own_stop_replaces_the_estimate(
    client, guest_charger, rate, seller
):
    """A receipt is an invoice: it never changes after it was issued. A session closed by our
    estimate (here: no StopTransaction came, docs/ocpp.md) is settled and receipted on it; the
    charger's own stop, arriving later, replaces the estimate in the session and its price, and
    the receipt the guest was given stays as it was, matching what their card was charged."""

    from billing.models import Payment, SessionCharge
    from billing.services import session_price
    from chargers.sessions import rules

    gs = _charge(client, guest_charger, 801, wh=7500)
    session = gs.charging_session
    ChargingSession.objects.filter(pk=session.pk).update(stop_reason=rules.NO_STOP_TRANSACTION)
    before = client.get(f"/s/receipt/{gs.key}/").content.decode()
    total = before.split('id="total">')[1].split("<")[0]
    assert "7.500 kWh" in before and "R-000001" in before
    captured = Payment.objects.get(pk=gs.payment_id).amount_captured
    assert total.endswith(f"{captured:.2f}")

    late = _estimated_then_charger_stop(gs, 801, 9500, later=timedelta(minutes=20))
    assert late is not None and late.meter_stop_wh == 9500  # the session took the real stop
    session_price(session_id=session.pk)
    assert SessionCharge.objects.get(session=session).energy_wh == 9500

    after = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert "R-000001" in after and "7.500 kWh" in after and "9.500 kWh" not in after
    assert after.split('id="total">')[1].split("<")[0] == total
    assert Receipt.objects.count() == 1
    pdf = client.get(f"/s/receipt/{gs.key}/pdf/")
    assert pdf.status_code == 200

    # The host's session page says what was not collected (the card was charged the estimate).
    host = MembershipFactory(organization=seller, role="owner").user
    client.force_login(host)
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    new_total = SessionCharge.objects.get(session=session).total
    assert 'data-settlement="short"' in page, page
    assert f"charged {captured:.2f} EUR of {new_total:.2f} EUR" in page
    # Where the card paid the whole cost, the page says nothing of it.
    Payment.objects.filter(pk=gs.payment_id).update(amount_captured=new_total)
    assert 'data-settlement="short"' not in client.get(f"/sessions/{session.pk}/").content.decode()


def test_what_a_guest_paid_above_the_final_cost_goes_back_to_the_card(
    client, guest_charger, rate, seller, django_capture_on_commit_callbacks, mailoutbox
):
    """The guest was charged on our estimate of the stop (9.5 kWh at the last reading); the
    charger's own stop, arriving later, says 7.5 kWh. The session is priced again and the
    difference is refunded at once (emailed, on the receipt), once; the receipt keeps its total."""

    from billing.models import Payment, Refund, SessionCharge
    from billing.services.refunds import overcharges_refund
    from chargers.sessions import rules

    gs = _charge(client, guest_charger, 802, wh=9500)
    session = gs.charging_session
    ChargingSession.objects.filter(pk=session.pk).update(stop_reason=rules.NO_STOP_TRANSACTION)
    receipt = client.get(f"/s/receipt/{gs.key}/").content.decode()
    total = receipt.split('id="total">')[1].split("<")[0]
    captured = Payment.objects.get(pk=gs.payment_id).amount_captured
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):  # session_finished, then pricing
        _estimated_then_charger_stop(gs, 802, 7500)
    final = SessionCharge.objects.get(session=session).total
    assert final < captured
    (refund,) = Refund.objects.filter(payment_id=gs.payment_id)
    assert (refund.amount, refund.source) == (captured - final, Refund.Source.FINAL_COST)
    assert f"final cost is {final:.2f} EUR" in refund.reason
    payment = Payment.objects.get(pk=gs.payment_id)
    assert payment.amount_captured - payment.amount_refunded == final  # paid what it cost
    assert [m.subject for m in mailoutbox] == [f"Your refund of {refund.amount:.2f} EUR"]

    page = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert page.split('id="total">')[1].split("<")[0] == total  # the receipt as issued
    assert f"{refund.amount:.2f}" in page and "meter reading came after the charge" in page
    # Priced again (the sweep, a repeated signal): nothing more is given back.
    assert overcharges_refund([session.pk]) == 0
    assert Refund.objects.filter(payment_id=gs.payment_id).count() == 1


def test_the_sweep_refunds_a_final_cost_below_the_charge_when_the_pricing_signal_was_lost(
    client, guest_charger, rate, seller
):
    """The charger's own stop is stored but the pricing it queues is lost (a killed process): the
    periodic sweep prices the late stop and gives the difference back all the same."""

    from billing.models import Payment, Refund, SessionCharge
    from billing.services.settlement import sessions_price_missing
    from chargers.sessions import rules

    gs = _charge(client, guest_charger, 803, wh=9500)
    session = gs.charging_session
    ChargingSession.objects.filter(pk=session.pk).update(stop_reason=rules.NO_STOP_TRANSACTION)
    captured = Payment.objects.get(pk=gs.payment_id).amount_captured
    # No on-commit callbacks run in this test's transaction: the pricing signal is lost.
    _estimated_then_charger_stop(gs, 803, 7500)
    assert not Refund.objects.filter(payment_id=gs.payment_id).exists()
    sessions_price_missing()
    final = SessionCharge.objects.get(session=session).total
    (refund,) = Refund.objects.filter(payment_id=gs.payment_id)
    assert final < captured and refund.amount == captured - final
