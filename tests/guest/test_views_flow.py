"""The start, session, stop and receipt pages over HTTP (CSRF, GET never starts anything)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from chargers.models import ChargingSession, Command
from guest import services
from guest.models import GuestSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def accepted(monkeypatch):
    calls = []

    def send(charger, action, payload, **kwargs):
        calls.append((action, payload))
        return Command(
            charger=charger,
            action=action,
            payload=payload,
            status="answered",
            response={"status": "Accepted"},
        )

    monkeypatch.setattr(services, "send_command_sync", send)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return calls


FORM = {"connector": "1", "email": "guest@example.com", "agree": "on"}


def start_and_pay(client, charger, method="pm_card_visa"):
    """What the guest's browser does: the start form, the pay page, the sandbox element's
    confirm (a test PaymentMethod id, never a card number), then the return_url."""
    from billing.models import SandboxIntent

    response = client.post(f"/s/{charger.station_id}/start/", FORM)
    gs = GuestSession.objects.get()
    assert response["Location"] == f"/s/pay/{gs.key}/"
    page = client.get(response["Location"]).content.decode()
    intent = SandboxIntent.objects.get(pk=gs.payment_reference)
    assert f'data-client-secret="{intent.client_secret}"' in page
    confirm = client.post(
        f"/billing/sandbox/v1/payment_intents/{intent.pk}/confirm",
        {"client_secret": intent.client_secret, "payment_method": method},
    )
    return confirm, client.get(f"/s/pay/{gs.key}/return/?payment_intent={intent.pk}")


def test_start_then_pay_leads_to_an_unguessable_session_page(client, guest_charger, rate, accepted):
    _confirm, response = start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/s/session/{gs.key}/"
    assert accepted[0] == ("RemoteStartTransaction", {"connectorId": 1, "idTag": gs.id_tag})
    page = client.get(response["Location"]).content.decode()
    assert "Plug in your car" in page
    assert f'data-ws="/ws/guest/{gs.key}/"' in page


def test_the_start_form_has_no_card_field_and_starts_nothing_before_payment(
    client, guest_charger, rate, accepted
):
    landing = client.get(f"/s/{guest_charger.station_id}").content.decode()
    assert "card_number" not in landing and 'autocomplete="cc-number"' not in landing
    client.post(f"/s/{guest_charger.station_id}/start/", FORM)
    gs = GuestSession.objects.get()
    assert gs.state == GuestSession.State.PENDING and accepted == []
    pay = client.get(f"/s/pay/{gs.key}/").content.decode()
    # The sandbox element's inputs have no name: a form submit could not carry them.
    assert 'id="sbx-card"' in pay and 'name="card' not in pay and "Sandbox card element" in pay
    # Payments are simulated: every payment page says so (issue 33 item 12).
    assert "data-test-mode" in pay and "<strong>Test mode</strong>" in pay
    assert "data-test-mode" in landing


def test_return_url_without_a_confirmed_hold_starts_nothing(client, guest_charger, rate, accepted):
    client.post(f"/s/{guest_charger.station_id}/start/", FORM)
    gs = GuestSession.objects.get()
    response = client.get(
        f"/s/pay/{gs.key}/return/?payment_intent={gs.payment_reference}&redirect_status=succeeded"
    )
    assert response.status_code == 200 and accepted == []
    assert "not finished yet" in response.content.decode()


def test_get_never_starts_anything(client, guest_charger, rate, accepted):
    client.get(f"/s/{guest_charger.station_id}/start/", FORM)
    client.get(f"/s/{guest_charger.station_id}", FORM)
    assert accepted == [] and not GuestSession.objects.exists()


def test_start_requires_csrf(guest_charger, rate, accepted):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(f"/s/{guest_charger.station_id}/start/", FORM)
    assert response.status_code == 403
    assert accepted == []


def test_stop_requires_csrf(guest_charger, rate, accepted, client):
    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    response = Client(enforce_csrf_checks=True).post(f"/s/session/{gs.key}/stop/")
    assert response.status_code == 403


def test_declined_card_shows_the_reason_once_and_starts_nothing(
    client, guest_charger, rate, accepted
):
    confirm, response = start_and_pay(client, guest_charger, method="pm_card_chargeDeclined")
    assert (
        confirm.status_code == 402
        and confirm.json()["error"]["message"] == "Your card was declined."
    )
    assert response.status_code == 402
    body = response.content.decode()
    assert body.count("Your card was declined.") == 1
    assert "Pay and start charging" in body
    assert accepted == []


def test_start_on_a_prompted_charger_shows_the_prompt(client, guest_charger, rate, accepted):
    guest_charger.license_valid_until = None
    guest_charger.save()
    response = client.post(f"/s/{guest_charger.station_id}/start/", FORM)
    assert "License inactive" in response.content.decode()
    assert accepted == []


def test_unknown_session_key_is_404(client, db):
    assert client.get("/s/session/not-a-key/").status_code == 404
    assert client.get("/s/receipt/not-a-key/").status_code == 404


def test_session_page_past_deadline_shows_released_hold(client, guest_charger, rate, accepted):
    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    GuestSession.objects.filter(pk=gs.pk).update(
        start_requested_at=timezone.now() - timedelta(minutes=5)
    )
    body = client.get(f"/s/session/{gs.key}/").content.decode()
    assert "hold on your card was released" in body
    receipt = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert "Charging did not start" in receipt and "EUR 0.00" in receipt


def test_stop_then_receipt(client, guest_charger, rate, accepted):
    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    started = timezone.now() - timedelta(minutes=30)
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=99,
        id_tag=gs.id_tag,
        token_id=gs.token_id,
        started_at=started,
        meter_start_wh=5000,
    )
    services.guest_session_link(session_id=session.pk)
    assert client.get(f"/s/receipt/{gs.key}/")["Location"] == f"/s/session/{gs.key}/"
    response = client.post(f"/s/session/{gs.key}/stop/")
    assert response.status_code == 302
    assert accepted[-1] == ("RemoteStopTransaction", {"transactionId": 99})
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed",
        stopped_at=started + timedelta(minutes=30),
        meter_stop_wh=12500,
    )
    services.guest_session_finish(session_id=session.pk)
    # The port is free again, but this guest's page shows their session's end, not an invitation.
    from chargers.models import Connector

    Connector.objects.filter(charger=guest_charger, connector_id=1).update(status="Available")
    page = client.get(f"/s/session/{gs.key}/").content.decode()
    assert (
        "Ready – plug in your car" not in page
        and "Session ended" in page
        and "View receipt" in page
    )
    body = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert "Receipt" in body and "7.500 kWh" in body
    assert "Connection fee" in body or "connection" in body.lower()
    assert "Total" in body and "EUR" in body
    assert "ending 4242" in body
    assert guest_charger.property.name in body
    assert "data-test-mode" in body  # a sandbox payment: the receipt says test mode


def test_receipt_page_settles_a_session_no_worker_settled(client, guest_charger, rate, accepted):
    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    started = timezone.now() - timedelta(minutes=10)
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=101,
        id_tag=gs.id_tag,
        token_id=gs.token_id,
        started_at=started,
        meter_start_wh=0,
    )
    services.guest_session_link(session_id=session.pk)
    # Completed without the finish signal's work (e.g. the worker was down).
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed", stopped_at=timezone.now(), meter_stop_wh=2000
    )
    response = client.get(f"/s/receipt/{gs.key}/")
    assert response.status_code == 200
    assert "2.000 kWh" in response.content.decode()
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FINISHED


def test_receipt_shows_local_times_and_two_decimal_money(client, guest_charger, rate, accepted):
    from datetime import UTC, datetime

    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    started = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 in Amsterdam (summer time)
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=202,
        id_tag=gs.id_tag,
        started_at=started,
        meter_start_wh=0,
    )
    services.guest_session_link(session_id=session.pk)
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed",
        stopped_at=started + timedelta(hours=1),
        meter_stop_wh=7345,
    )
    services.guest_session_finish(session_id=session.pk)
    body = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert "1 Jul 2026, 12:00 CEST" in body and "1 Jul 2026, 13:00 CEST" in body
    assert "UTC" not in body.split('id="receipt"')[1]
    assert "EUR 32.67 hold" in body
    # No amount with the database's four decimals (the receipt number R-000001 has zeros too).
    assert not re.search(r"\d\.\d{4}", body.split('id="receipt"')[1])


def test_failed_session_contact_support_carries_what_happened(
    client, guest_charger, rate, accepted
):
    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    client.post(f"/s/session/{gs.key}/stop/")  # cancel before the car started
    body = client.get(f"/s/session/{gs.key}/").content.decode()
    assert "prompt=Charging+did+not+start" in body
    assert "station_id=HB-Lot-01" in body


def test_a_paid_session_that_got_no_energy_says_why_and_that_nothing_was_charged(
    client, guest_charger, rate, accepted
):
    """Issue 35 item 15: the charger's own session held the port; the guest's got 0 kWh."""
    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    now = timezone.now()
    ChargingSession.objects.create(  # the charger's own session on the guest's port
        charger=guest_charger,
        connector_id=1,
        transaction_id=301,
        id_tag="LOCAL-CARD",
        started_at=now - timedelta(minutes=5),
        meter_start_wh=0,
    )
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=302,
        id_tag=gs.id_tag,
        started_at=now - timedelta(minutes=2),
        meter_start_wh=500,
    )
    services.guest_session_link(session_id=session.pk)
    # Item 16: OCPP 2.0.1's Occupied reads as Charging; the receipt waits for the end; stopping
    # asks once.
    from chargers.models import Connector

    Connector.objects.filter(charger=guest_charger, connector_id=1).update(status="Occupied")
    page = client.get(f"/s/session/{gs.key}/").content.decode()
    assert '<div class="big" id="state-label">Charging</div>' in page and ">Occupied<" not in page
    receipt_link = page.split('id="receipt-link"', 1)[1].split(">", 1)[0]
    assert receipt_link.rstrip().endswith("hidden")
    assert 'data-confirm-stop="Stop charging now?' in page
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed", stopped_at=now, meter_stop_wh=500
    )
    services.guest_session_finish(session_id=session.pk)
    page = client.get(f"/s/session/{gs.key}/").content.decode()
    assert "Ended – no energy delivered" in page and "Finished – thank you!" not in page
    assert "Another session was using this port" in page
    assert "Nothing was charged: the hold on your card is released." in page


def test_the_session_page_shows_cost_so_far_and_time_then_the_receipts_total(
    client, guest_charger, rate, accepted
):
    """Issue 51 item 5: while charging, the page shows the cost so far and the time, priced by
    the receipt's own function; once finished, the same amount as the receipt's total."""
    from chargers.models import MeterValue
    from guest import payments

    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    started = timezone.now() - timedelta(minutes=30)
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=98,
        id_tag=gs.id_tag,
        token_id=gs.token_id,
        started_at=started,
        meter_start_wh=5000,
    )
    services.guest_session_link(session_id=session.pk)
    MeterValue.objects.create(
        charger=guest_charger,
        session=session,
        connector_id=1,
        timestamp=started + timedelta(minutes=20),
        measurand="Energy.Active.Import.Register",
        unit="Wh",
        value=10000,
    )
    page = client.get(f"/s/session/{gs.key}/").content.decode()
    # 1.00 connection + 5 kWh × 0.40 = 3.00, +21 % tax = 3.63 EUR.
    assert 'id="cost-label">Cost so far<' in page and 'id="cost">3.63 EUR<' in page
    assert 'id="elapsed" data-elapsed="1800" data-running="1">30 min<' in page
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed", stopped_at=started + timedelta(minutes=30), meter_stop_wh=12500
    )
    services.guest_session_finish(session_id=session.pk)
    page = client.get(f"/s/session/{gs.key}/").content.decode()
    total = payments.session_cost(ChargingSession.objects.get(pk=session.pk)).total
    assert f"{total:.2f}" == "4.84"  # 1.00 + 7.5 kWh × 0.40 = 4.00, +21 %
    assert 'id="cost-label">Cost<' in page and 'id="cost">4.84 EUR<' in page
    assert "4.84" in client.get(f"/s/receipt/{gs.key}/").content.decode()


def test_a_yen_receipt_and_its_email_have_no_decimals(client, guest_charger, rate, accepted):
    """Money in the currency's own decimals (ISO 4217): JPY has none, so never "JPY 100.00"."""
    from django.core import mail

    site = guest_charger.property
    site.currency = "JPY"
    site.save(update_fields=["currency"])
    type(rate).objects.filter(pk=rate.pk).update(
        connection_fee=Decimal("100"),
        energy_price_per_kwh=Decimal("40"),
        idle_fee_per_minute=Decimal("10"),
        tax_percent=0,
    )
    start_and_pay(client, guest_charger)
    gs = GuestSession.objects.get()
    started = timezone.now() - timedelta(hours=1)
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=303,
        id_tag=gs.id_tag,
        started_at=started,
        meter_start_wh=0,
    )
    services.guest_session_link(session_id=session.pk)
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed", stopped_at=started + timedelta(minutes=30), meter_stop_wh=10000
    )
    services.guest_session_finish(session_id=session.pk)
    receipt = client.get(f"/s/receipt/{gs.key}/").content.decode().split('id="receipt"')[1]
    assert 'id="total">JPY 500<' in receipt  # 100 + 10 kWh × 40
    emails = [m.body for m in mail.outbox if "receipt" in m.subject.lower()]
    assert emails and "Total: JPY 500\n" in emails[-1]
    assert not re.search(r"JPY \d+\.\d", receipt + emails[-1])
