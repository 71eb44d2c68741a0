"""A session paid by a hold (a guest's card, a payment terminal's preauthorization) is stopped
when it reaches the ceiling the hold pays for: past it, energy would be delivered that the
capture (never more than the hold) cannot pay for."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authorization.models import Token
from billing.holds import Ceiling, ceiling_reached
from chargers.models import ChargingSession, Command, MeterValue
from guest import ceilings
from guest.models import GuestSession
from roaming.models import TerminalPayment
from tests.factories import ChargerFactory
from tests.roaming.conftest import operator  # noqa: F401 (fixture)
from tests.roaming.test_payments_module import _ptp_token, _terminal, ptp  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


class FakeCharger:
    """Answers the remote stop as a charger that accepts it, and records it as a Command."""

    def __init__(self):
        self.calls = []

    def __call__(self, charger, action, payload, *, source, **kwargs):
        self.calls.append((charger.station_id, action, payload))
        return Command.objects.create(
            charger=charger,
            action=action,
            payload=payload,
            source=source,
            status=Command.Status.ANSWERED,
            response={"status": "Accepted"},
        )


@pytest.fixture
def fake_charger(monkeypatch):
    fake = FakeCharger()
    monkeypatch.setattr(ceilings, "send_command_sync", fake)
    return fake


@pytest.fixture
def ceiling(settings):
    settings.GUEST_SESSION_MAX_KWH = 20
    settings.GUEST_SESSION_MAX_HOURS = 2


def _session(charger, token, *, hours=1.0, transaction_id=4711):
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=transaction_id,
        id_tag=token.uid,
        token=token,
        started_at=timezone.now() - timedelta(hours=hours),
        meter_start_wh=1_000,
        status=ChargingSession.Status.ACTIVE,
    )


def _reading(session, wh):
    MeterValue.objects.create(
        charger=session.charger,
        session=session,
        connector_id=1,
        timestamp=timezone.now(),
        measurand="Energy.Active.Import.Register",
        unit="Wh",
        value=Decimal(wh),
        raw_value=str(wh),
    )


def _guest(charger, *, paid=True, **kwargs):
    token = Token.objects.create(
        uid="GUEST0000001", type=Token.Type.GUEST, organization=charger.property.organization
    )
    session = _session(charger, token, **kwargs)
    GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="g@example.com",
        token=token,
        id_tag=token.uid,
        charging_session=session,
        state=GuestSession.State.CHARGING,
        paid_at=timezone.now() if paid else None,
        amount_held=Decimal("12.00"),
    )
    return session


def test_the_rule_names_what_was_reached():
    limit = Ceiling(kwh=Decimal(20), hours=Decimal(2))
    assert ceiling_reached(limit, kwh=Decimal("19.99"), hours=Decimal("1.9")) == ""
    assert ceiling_reached(limit, kwh=Decimal(20), hours=Decimal(0)) == "20 kWh"
    assert ceiling_reached(limit, kwh=Decimal(1), hours=Decimal(2)) == "2 hours"


def test_a_guest_session_is_stopped_once_its_meter_reaches_the_ceiling(ceiling, fake_charger):
    charger = ChargerFactory(station_id="HOLD-1")
    session = _guest(charger)
    _reading(session, 19_000)  # 18 kWh of 20
    assert ceilings.held_ceilings_enforce() == [] and fake_charger.calls == []
    _reading(session, 21_500)  # 20.5 kWh
    assert ceilings.held_ceilings_enforce() == [session.pk]
    assert fake_charger.calls == [("HOLD-1", "RemoteStopTransaction", {"transactionId": 4711})]
    assert GuestSession.objects.get().stop_requested_at is not None
    # Asked once; the next sweep waits for the charger's stop.
    assert ceilings.held_ceilings_enforce() == [] and len(fake_charger.calls) == 1


def test_a_guest_session_is_stopped_at_the_ceilings_hours(ceiling, fake_charger):
    session = _guest(ChargerFactory(), hours=2.01)
    assert ceilings.held_ceilings_enforce() == [session.pk]


def test_sessions_not_paid_by_a_hold_are_left_alone(ceiling, fake_charger):
    charger = ChargerFactory()
    unpaid = _guest(charger, hours=3)  # a stay's guest session: its own kWh cap rules it
    GuestSession.objects.filter(charging_session=unpaid).update(paid_at=None)
    card = Token.objects.create(uid="OWNCARD1", organization=charger.property.organization)
    _session(charger, card, hours=5, transaction_id=9)
    assert ceilings.held_ceilings_enforce() == [] and fake_charger.calls == []


def test_a_terminal_paid_session_is_stopped_at_its_preauthorization(
    operator,  # noqa: F811
    ptp,  # noqa: F811
    ceiling,
    fake_charger,
):
    card = Token.objects.create(uid="PTCEILING01", msp=ptp.msp, single_session=True)
    session = _session(operator["cp_public"], card, hours=0.5)
    TerminalPayment.objects.create(
        organization=operator["org"],
        partner=ptp,
        terminal=_terminal(ptp, operator, terminal_id="T-CEIL"),
        authorization_reference="ref-ceil",
        token=card,
        token_data=_ptp_token(),
        charger=operator["cp_public"],
        connector_id=1,
    )
    _reading(session, 25_000)
    assert ceilings.held_ceilings_enforce() == [session.pk]
    assert fake_charger.calls[0][1:] == ("RemoteStopTransaction", {"transactionId": 4711})


def test_one_sessions_failure_does_not_keep_the_others_unchecked(
    ceiling, fake_charger, monkeypatch
):
    first = _guest(ChargerFactory(station_id="BROKEN"), hours=3)
    fine = ChargerFactory(station_id="FINE")
    card = Token.objects.create(
        uid="GUEST0000002", type=Token.Type.GUEST, organization=fine.property.organization
    )
    second = _session(fine, card, hours=3, transaction_id=5)
    GuestSession.objects.create(
        charger=second.charger,
        connector_id=1,
        email="h@example.com",
        token=card,
        id_tag=card.uid,
        charging_session=second,
        state=GuestSession.State.CHARGING,
        paid_at=timezone.now(),
    )
    real = ceilings.running_kwh

    def broken(session):
        if session.pk == first.pk:
            raise RuntimeError("a reading no one can read")
        return real(session)

    monkeypatch.setattr(ceilings, "running_kwh", broken)
    assert ceilings.held_ceilings_enforce() == [second.pk]


class RefusingCharger(FakeCharger):
    def __call__(self, charger, action, payload, *, source, **kwargs):
        command = super().__call__(charger, action, payload, source=source, **kwargs)
        command.response = {"status": "Rejected"}
        command.save(update_fields=["response"])
        return command


def test_a_ceiling_stop_that_failed_leaves_the_guests_own_stop_free(ceiling, monkeypatch):
    """The charger refused the ceiling's stop: the guest's Stop a moment later is sent (it was
    swallowed for 30 s as 'under way' while nothing was stopping)."""
    from guest import services

    refusing = RefusingCharger()
    monkeypatch.setattr(ceilings, "send_command_sync", refusing)
    session = _guest(ChargerFactory(station_id="REFUSES"), hours=3)
    assert ceilings.held_ceilings_enforce() == []
    assert len(refusing.calls) == 1
    gs = GuestSession.objects.get(charging_session=session)
    assert gs.stop_requested_at is None
    accepting = FakeCharger()
    monkeypatch.setattr(services, "send_command_sync", accepting)
    services.guest_cancel_or_stop(gs=gs)
    assert accepting.calls == [("REFUSES", "RemoteStopTransaction", {"transactionId": 4711})]
