"""The start flow: hold, guest token, remote start; refusals, declines, timeouts, stop, settlement."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from authorization.models import Token
from billing.models import Payment
from chargers.devices.commands import ChargerOffline, CommandTimeout
from chargers.models import ChargingSession, Command
from guest import services, starts
from guest.models import GuestSession
from guest.schedule import start_check as real_start_check
from tests.factories import ChargerFactory
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db(transaction=True)

APPROVE = "pm_card_visa"  # Stripe test PaymentMethods: the server never sees card numbers
DECLINE = "pm_card_chargeDeclined"


class FakeCharger:
    """Stands in for chargers.devices.commands.send_command_sync and records the CALLs."""

    def __init__(self, answer="Accepted", raises=None):
        self.answer, self.raises, self.calls = answer, raises, []

    def __call__(self, charger, action, payload, **kwargs):
        self.calls.append((action, payload, kwargs))
        if self.raises:
            raise self.raises
        return Command(
            charger=charger,
            action=action,
            payload=payload,
            status=Command.Status.ANSWERED,
            response={"status": self.answer},
        )


@pytest.fixture
def fake_charger(monkeypatch):
    fake = FakeCharger()
    monkeypatch.setattr(services, "send_command_sync", fake)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return fake


def start(charger, card=APPROVE, connector_id=1):
    return services.guest_start(
        charger=charger,
        connector_id=connector_id,
        email="guest@example.com",
        payment_method=card,
        site_url="https://charge.example",
    )


def test_start_holds_creates_guest_token_and_sends_remote_start(guest_charger, rate, fake_charger):
    gs = start(guest_charger)
    assert gs.state == GuestSession.State.STARTING
    action, payload, kwargs = fake_charger.calls[0]
    assert action == "RemoteStartTransaction"
    assert payload == {"connectorId": 1, "idTag": gs.id_tag}
    assert kwargs["source"] == "guest"
    token = Token.objects.get(pk=gs.token_id)
    assert token.type == Token.Type.GUEST and len(token.uid) == 20
    assert token.organization_id == guest_charger.property.organization_id
    payment = Payment.objects.get(pk=gs.payment_id)
    assert payment.status == Payment.Status.AUTHORIZED
    # 1.00 + 60 kWh x 0.40 + (30 - 10) min x 0.10, plus 21 % tax: the session ceiling's price.
    assert payment.amount_held == Decimal("32.67") and payment.currency == "EUR"
    assert gs.card_last4 == "4242"
    assert len(gs.key) >= 32


def test_declined_card_refuses_without_remote_start(guest_charger, rate, fake_charger):
    with pytest.raises(services.StartRefused) as refused:
        start(guest_charger, card=DECLINE)
    assert refused.value.code == "payment_declined"
    assert fake_charger.calls == []
    assert Payment.objects.get().status == Payment.Status.RELEASED
    assert not Token.objects.get(uid_normalized=GuestSession.objects.get().id_tag).valid


def test_charger_rejecting_remote_start_releases_the_hold(guest_charger, rate, fake_charger):
    fake_charger.answer = "Rejected"
    gs = start(guest_charger)
    assert gs.state == GuestSession.State.FAILED
    assert gs.failure_code == "start_rejected"
    assert "not charged" in gs.failure_message
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.RELEASED
    assert not Token.objects.get(pk=gs.token_id).valid


@pytest.mark.parametrize(
    "error", [ChargerOffline("x"), CommandTimeout(Command(action="RemoteStartTransaction"))]
)
def test_charger_offline_or_silent_releases_the_hold(guest_charger, rate, fake_charger, error):
    fake_charger.raises = error
    gs = start(guest_charger)
    assert gs.state == GuestSession.State.FAILED
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.RELEASED


def test_not_allowed_from_authorization_engine_holds_nothing(site, rate, fake_charger):
    charger = make_online(
        ChargerFactory(property=site, station_id="NOG-1", guest_charging_enabled=False)
    )
    with pytest.raises(services.StartRefused) as refused:
        start(charger)
    assert refused.value.prompt == "not_allowed"
    assert "guest charging" in refused.value.message
    assert fake_charger.calls == [] and not Payment.objects.exists()


def test_start_on_busy_port_is_refused(guest_charger, rate, fake_charger):
    guest_charger.connectors.filter(connector_id=1).update(status="Charging")
    with pytest.raises(services.StartRefused) as refused:
        start(guest_charger)
    assert refused.value.code == "port_busy"


def test_second_guest_cannot_take_a_port_waiting_for_the_first(guest_charger, rate, fake_charger):
    start(guest_charger)
    with pytest.raises(services.StartRefused):
        start(guest_charger)


def test_prompt_state_is_rechecked_at_start(guest_charger, rate, fake_charger):
    guest_charger.out_of_order = True
    guest_charger.save()
    with pytest.raises(services.StartRefused) as refused:
        start(guest_charger)
    assert refused.value.prompt == "out_of_order"


def test_no_transaction_within_the_timeout_releases_the_hold(
    guest_charger, rate, fake_charger, settings
):
    settings.GUEST_START_TIMEOUT_S = 60
    gs = start(guest_charger)
    assert services.guest_start_expire(guest_session_id=gs.pk) is False  # not yet
    later = timezone.now() + timedelta(seconds=61)
    assert services.guest_start_expire(guest_session_id=gs.pk, now=later) is True
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FAILED and gs.failure_code == "not_plugged_in"
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.RELEASED
    assert Payment.objects.get(pk=gs.payment_id).amount_captured == 0
    assert not Token.objects.get(pk=gs.token_id).valid
    # Idempotent: a second check (task, sweep, page) changes nothing.
    assert services.guest_start_expire(guest_session_id=gs.pk, now=later) is False


def test_sweep_expires_overdue_starts(guest_charger, rate, fake_charger):
    gs = start(guest_charger)
    assert services.guest_expire_overdue(now=timezone.now() + timedelta(minutes=5)) == 1
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FAILED


def test_schedule_check_runs_in_a_timer_without_broker(guest_charger, rate, fake_charger, settings):
    import threading

    settings.CELERY_TASK_ALWAYS_EAGER = True
    from guest import schedule

    gs = start(guest_charger)
    GuestSession.objects.filter(pk=gs.pk).update(
        start_requested_at=timezone.now() - timedelta(minutes=5)
    )
    done = threading.Event()
    original = schedule._check_later

    def check(task, pk):
        original(task, pk)
        done.set()

    schedule._check_later = check
    try:
        real_start_check(gs.pk, 0)
        assert done.wait(10)
    finally:
        schedule._check_later = original
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FAILED


def _session_for(gs, *, energy_wh=10_000, minutes=60):
    started = timezone.now() - timedelta(minutes=minutes)
    return (
        ChargingSession.objects.create(
            charger=gs.charger,
            connector_id=gs.connector_id,
            transaction_id=4242,
            id_tag=gs.id_tag,
            token_id=gs.token_id,
            started_at=started,
            meter_start_wh=1000,
        ),
        started,
        energy_wh,
    )


def test_start_transaction_links_settle_on_finish_and_email_receipt(
    guest_charger, rate, fake_charger
):
    gs = start(guest_charger)
    session, started, energy = _session_for(gs)
    services.guest_session_link(session_id=session.pk)
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.CHARGING and gs.charging_session_id == session.pk
    # A late expiry check must not touch a session that started.
    assert (
        services.guest_start_expire(guest_session_id=gs.pk, now=timezone.now() + timedelta(hours=1))
        is False
    )

    ChargingSession.objects.filter(pk=session.pk).update(
        status=ChargingSession.Status.COMPLETED,
        stopped_at=started + timedelta(minutes=60),
        meter_stop_wh=1000 + energy,
        stop_reason="EVDisconnected",
    )
    services.guest_session_finish(session_id=session.pk)
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FINISHED
    payment = Payment.objects.get(pk=gs.payment_id)
    assert payment.status == Payment.Status.CAPTURED
    # 1.00 connection + 10 kWh x 0.40 = 5.00, + 21 % tax = 6.05
    assert payment.amount_captured == Decimal("6.05")
    assert not Token.objects.get(pk=gs.token_id).valid
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["guest@example.com"]
    assert f"https://charge.example/s/receipt/{gs.key}/" in email.body
    assert "10.000 kWh" in email.body and "EUR 6.05" in email.body
    assert "Test mode: this payment was simulated" in email.body  # the sandbox gateway
    # Idempotent: a repeated signal neither captures again nor re-sends the receipt.
    services.guest_session_finish(session_id=session.pk)
    assert len(mail.outbox) == 1


def test_a_start_that_is_no_guests_is_told_apart_in_one_query(
    guest_charger, rate, fake_charger, django_assert_num_queries
):
    """Every start of every charger asks whether a guest waits for it: with no guest starting
    anywhere one query says no; another card's start on the charger a guest is starting, or a
    refused start with the guest's card, is told apart without locking anything and not linked."""
    other = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=4243,
        id_tag="OTHERCARD",
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    with django_assert_num_queries(1):
        assert services.guest_session_link(session_id=other.pk) is None
    gs = start(guest_charger)
    with django_assert_num_queries(2):
        assert services.guest_session_link(session_id=other.pk) is None
    refused, _, _ = _session_for(gs)
    ChargingSession.objects.filter(pk=refused.pk).update(id_tag_status="Blocked")
    with django_assert_num_queries(2):
        assert services.guest_session_link(session_id=refused.pk) is None
    gs.refresh_from_db()
    assert gs.state in starts.OPEN_BEFORE_START and gs.charging_session_id is None


def test_stop_sends_remote_stop_for_the_transaction(guest_charger, rate, fake_charger):
    gs = start(guest_charger)
    session, _, _ = _session_for(gs)
    services.guest_session_link(session_id=session.pk)
    gs.refresh_from_db()
    services.guest_cancel_or_stop(gs=gs)
    assert fake_charger.calls[-1][:2] == ("RemoteStopTransaction", {"transactionId": 4242})
    gs.refresh_from_db()
    assert gs.stop_requested_at is not None


def test_stop_on_offline_charger_tells_guest_to_unplug(guest_charger, rate, fake_charger):
    gs = start(guest_charger)
    session, _, _ = _session_for(gs)
    services.guest_session_link(session_id=session.pk)
    gs.refresh_from_db()
    fake_charger.raises = ChargerOffline("x")
    with pytest.raises(services.StopFailed, match="Unplug"):
        services.guest_cancel_or_stop(gs=gs)


def test_a_refused_stop_can_be_asked_again_at_once(guest_charger, rate, fake_charger):
    gs = start(guest_charger)
    session, _, _ = _session_for(gs)
    services.guest_session_link(session_id=session.pk)
    gs.refresh_from_db()
    fake_charger.answer = "Rejected"
    with pytest.raises(services.StopFailed, match="refused to stop"):
        services.guest_cancel_or_stop(gs=gs)
    gs.refresh_from_db()
    assert gs.stop_requested_at is None  # not "stopping": the guest may press Stop again
    fake_charger.answer = "Accepted"
    services.guest_cancel_or_stop(gs=gs)
    stops = [call for call in fake_charger.calls if call[0] == "RemoteStopTransaction"]
    assert len(stops) == 2


def test_stop_racing_the_chargers_own_stop_is_no_failure(
    guest_charger, rate, fake_charger, monkeypatch
):
    """The car was unplugged as the guest pressed Stop: the charger's StopTransaction arrives
    first and it refuses the RemoteStopTransaction of a transaction it has ended. The guest is
    not told to unplug a car the charger already stopped."""
    gs = start(guest_charger)
    session, _, _ = _session_for(gs)
    services.guest_session_link(session_id=session.pk)
    gs.refresh_from_db()

    def stopped_by_itself(charger, action, payload, **kwargs):
        ChargingSession.objects.filter(pk=session.pk).update(
            status=ChargingSession.Status.COMPLETED, stopped_at=timezone.now()
        )
        return Command(
            charger=charger,
            action=action,
            payload=payload,
            status="answered",
            response={"status": "Rejected"},
        )

    monkeypatch.setattr(services, "send_command_sync", stopped_by_itself)
    assert services.guest_cancel_or_stop(gs=gs).pk == gs.pk


def test_cancel_before_the_car_starts_releases_the_hold(guest_charger, rate, fake_charger):
    gs = start(guest_charger)
    services.guest_cancel_or_stop(gs=gs)
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FAILED and gs.failure_code == "cancelled"
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.RELEASED


def test_start_transaction_racing_the_remote_start_answer_still_links(
    guest_charger, rate, fake_charger, monkeypatch
):
    """The simulator starts before our RemoteStart answer arrives: PENDING -> CHARGING directly."""
    original = fake_charger.__call__

    def answer_and_start(charger, action, payload, **kwargs):
        gs = GuestSession.objects.get(id_tag=payload["idTag"])
        session = ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=777,
            id_tag=payload["idTag"],
            started_at=timezone.now(),
            meter_start_wh=0,
        )
        services.guest_session_link(session_id=session.pk)
        assert GuestSession.objects.get(pk=gs.pk).state == GuestSession.State.CHARGING
        return original(charger, action, payload, **kwargs)

    monkeypatch.setattr(services, "send_command_sync", answer_and_start)
    gs = start(guest_charger)
    assert gs.state == GuestSession.State.CHARGING


def test_sweep_settles_sessions_whose_finish_was_missed(guest_charger, rate, fake_charger):
    gs = start(guest_charger)
    session, started, energy = _session_for(gs)
    services.guest_session_link(session_id=session.pk)
    ChargingSession.objects.filter(pk=session.pk).update(
        status=ChargingSession.Status.COMPLETED,
        stopped_at=started + timedelta(minutes=60),
        meter_stop_wh=1000 + energy,
    )
    assert services.guest_finish_unsettled() == 1
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FINISHED
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.CAPTURED
    assert services.guest_finish_unsettled() == 0


def test_sweep_tasks_run_eagerly(guest_charger, rate, fake_charger):
    from guest.tasks import guest_expire_overdue_task, guest_finish_unsettled_task

    # `.result`, not `.get()` (Celery's join check is a process-global flag other threads set).
    expired, finished = guest_expire_overdue_task.apply(), guest_finish_unsettled_task.apply()
    assert expired.successful() and expired.result == 0
    assert finished.successful() and finished.result == 0


def test_a_stop_queues_settling_only_while_some_guest_session_is_unsettled(
    guest_charger, rate, fake_charger, settings, monkeypatch
):
    """Every stop of every charger announces "finished": no settling task is queued for it while
    no guest session anywhere is paying, starting or charging (a restart stops thousands)."""
    from guest import receivers, tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(tasks.guest_session_finish_task, "delay", queued.append)
    other = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=4243,
        id_tag="OTHERCARD",
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    receivers.on_finished(ChargingSession, session_id=other.pk)
    assert queued == []
    gs = start(guest_charger)
    receivers.on_finished(ChargingSession, session_id=other.pk)
    assert queued == [other.pk]
    GuestSession.objects.filter(pk=gs.pk).update(state=GuestSession.State.FINISHED)
    receivers.on_finished(ChargingSession, session_id=other.pk)
    assert queued == [other.pk]
