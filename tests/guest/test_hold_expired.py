"""The card hold expired at the processor before the charger reported the end of the session
(a charger offline for 8 days; card-not-present authorizations lapse after about 7): the
capture cannot happen. The guest session still closes with a receipt that says nothing was
charged, the host's session page says what was not collected, and the sweep stops asking."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing.models import LedgerTransaction, Payment, SandboxIntent
from billing.receivers import session_settlement
from billing.sandbox import emit, intent_json
from billing.services import session_price
from chargers.models import ChargingSession
from guest import services
from guest.models import GuestSession
from tests.guest.test_start_flow import APPROVE, FakeCharger

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake_charger(monkeypatch):
    fake = FakeCharger()
    monkeypatch.setattr(services, "send_command_sync", fake)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return fake


def _charging_for_days(charger, days=8):
    gs = services.guest_start(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        payment_method=APPROVE,
        site_url="https://charge.example",
    )
    started = timezone.now() - timedelta(days=days)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=777,
        id_tag=gs.id_tag,
        token_id=gs.token_id,
        started_at=started,
        meter_start_wh=1000,
    )
    services.guest_session_link(session_id=session.pk)
    return gs, session, started


def _processor_expires_the_hold(gs, *, tell_us: bool):
    """What Stripe does to an uncaptured PaymentIntent after the authorization lapsed."""
    intent = SandboxIntent.objects.get(pk=gs.payment_reference)
    intent.status, intent.amount_capturable = "canceled", 0
    intent.save(update_fields=["status", "amount_capturable"])
    if tell_us:  # the webhook arrived; otherwise it is late or lost
        emit("payment_intent.canceled", {**intent_json(intent), "cancellation_reason": "automatic"})


def _stop_arrives(session, started):
    ChargingSession.objects.filter(pk=session.pk).update(
        status=ChargingSession.Status.COMPLETED,
        stopped_at=started + timedelta(hours=2),
        meter_stop_wh=11_000,
        stop_reason="EVDisconnected",
    )
    session_price(session_id=session.pk)  # what the stop's own pricing does


def test_a_stop_after_the_hold_expired_closes_the_session_instead_of_retrying_for_ever(
    client, guest_charger, rate, fake_charger
):
    gs, session, started = _charging_for_days(guest_charger)
    _processor_expires_the_hold(gs, tell_us=False)
    _stop_arrives(session, started)
    mail.outbox.clear()

    assert services.guest_finish_unsettled() == 1
    gs.refresh_from_db()
    payment = Payment.objects.get(pk=gs.payment_id)
    # Before: the capture's refusal left the guest session CHARGING, so every sweep asked the
    # processor again, for ever, and the guest never got a receipt.
    assert gs.state == GuestSession.State.FINISHED
    assert payment.status == Payment.Status.RELEASED and payment.amount_captured == 0
    assert "expired" in payment.release_reason
    assert not LedgerTransaction.objects.filter(kind="guest_charge").exists()
    # The receipt says so plainly (before: "Charged to your card: EUR 0.00", and on the page
    # "The rest of the EUR 32.67 hold was released").
    assert len(mail.outbox) == 1
    assert "Nothing was charged to your card ending 4242" in mail.outbox[0].body
    page = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert "Nothing was charged to your card" in page and "The rest of the" not in page
    # Nothing left for the sweep; the host's session says what was not collected.
    assert services.guest_finish_unsettled() == 0
    settlement = session_settlement(ChargingSession.objects.get(pk=session.pk))
    assert settlement["status"] == "short"
    assert "Nothing was charged" in settlement["text"] and "6.05 EUR" in settlement["text"]


def test_the_host_is_not_told_billed_when_the_webhook_said_the_hold_expired(
    guest_charger, rate, fake_charger
):
    gs, session, started = _charging_for_days(guest_charger)
    _processor_expires_the_hold(gs, tell_us=True)
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.RELEASED
    _stop_arrives(session, started)

    services.guest_session_finish(session_id=session.pk)
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FINISHED
    settlement = session_settlement(ChargingSession.objects.get(pk=session.pk))
    # Before: "Billed." for a session of which not a cent was collected.
    assert settlement["status"] == "short" and "Nothing was charged" in settlement["text"]
