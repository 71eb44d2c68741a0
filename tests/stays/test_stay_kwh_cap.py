"""The kWh cap while a stay's session runs, and a connector reserved (ReserveNow) for another card."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authorization.models import AuthorizationDecision, Token
from chargers.models import ChargingSession, ConnectorReservation, MeterValue
from guest import stays as guest_stays
from guest.models import GuestSession
from stays.models import StayPolicy
from tests.stays.test_stay_code_start import _post, fake_charger, stay  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def _running(own, reservation, *, meter_start=1_000):
    token = Token.objects.create(
        uid="SRUNNING01",
        type=Token.Type.GUEST,
        organization=own.property.organization,
        reservation=reservation,
    )
    session = ChargingSession.objects.create(
        charger=own,
        connector_id=1,
        transaction_id=4242,
        id_tag=token.uid,
        token=token,
        started_at=timezone.now() - timedelta(hours=1),
        meter_start_wh=meter_start,
        status="active",
    )
    GuestSession.objects.create(
        charger=own,
        connector_id=1,
        email="",
        token=token,
        id_tag=token.uid,
        charging_session=session,
        state=GuestSession.State.CHARGING,
    )
    return token, session


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


def test_a_running_session_is_stopped_remotely_when_its_meter_reaches_the_cap(stay, fake_charger):  # noqa: F811
    prop, own, _, reservation = stay
    StayPolicy.objects.create(property=prop, kwh_cap=Decimal("10"))
    token, session = _running(own, reservation)
    _reading(session, 9_000)  # 8 kWh so far
    assert guest_stays.stay_caps_enforce() == [] and fake_charger.calls == []
    _reading(session, 11_500)  # 10.5 kWh: over the cap
    assert guest_stays.stay_caps_enforce() == [session.pk]
    assert fake_charger.calls == [("CABIN-1", "RemoteStopTransaction", {"transactionId": 4242})]
    decision = AuthorizationDecision.objects.get()
    assert (
        decision.reason == "reservation_cap_reached" and decision.reservation_id == reservation.pk
    )
    assert "10 kWh are used up (10.50 kWh)" in decision.message and decision.token_id == token.pk
    assert GuestSession.objects.get(token=token).stop_requested_at is not None
    # Asked once: the next sweep waits for the charger's StopTransaction.
    assert guest_stays.stay_caps_enforce() == [] and len(fake_charger.calls) == 1


def test_finished_sessions_of_the_stay_count_towards_the_cap(stay, fake_charger):  # noqa: F811
    prop, own, _, reservation = stay
    StayPolicy.objects.create(property=prop, kwh_cap=Decimal("10"))
    earlier = Token.objects.create(
        uid="SEARLIER02",
        type=Token.Type.GUEST,
        organization=prop.organization,
        reservation=reservation,
    )
    ChargingSession.objects.create(
        charger=own,
        connector_id=1,
        transaction_id=990,
        id_tag=earlier.uid,
        token=earlier,
        started_at=timezone.now() - timedelta(hours=9),
        stopped_at=timezone.now() - timedelta(hours=8),
        meter_start_wh=0,
        meter_stop_wh=7_000,
        status="completed",
    )
    _, session = _running(own, reservation, meter_start=7_000)
    _reading(session, 10_000)  # 3 kWh now + 7 before = the cap
    assert guest_stays.stay_caps_enforce() == [session.pk]


def test_no_cap_or_billed_stays_are_never_stopped(stay, fake_charger):  # noqa: F811
    prop, own, _, reservation = stay
    policy = StayPolicy.objects.create(property=prop, kwh_cap=None)
    _, session = _running(own, reservation)
    _reading(session, 500_000)
    assert guest_stays.stay_caps_enforce() == []
    policy.kwh_cap, policy.charging = Decimal("1"), StayPolicy.Charging.BILLED
    policy.save()
    assert guest_stays.stay_caps_enforce() == [] and fake_charger.calls == []


def test_a_connector_reserved_for_another_card_refuses_the_code(client, stay, fake_charger):  # noqa: F811
    _, own, _, reservation = stay
    held = ConnectorReservation.objects.create(
        charger=own,
        connector_id=1,
        reservation_id=7,
        id_tag="OTHERCARD",
        status=ConnectorReservation.Status.ACTIVE,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    response = _post(client, own, reservation.access_code)
    assert response.status_code == 403 and b"reserved for another driver" in response.content
    decision = AuthorizationDecision.objects.get()
    assert decision.reason == "connector_reserved" and decision.reservation_id == reservation.pk
    assert fake_charger.calls == [] and not GuestSession.objects.exists()
    held.status = ConnectorReservation.Status.CANCELLED
    held.save()
    assert _post(client, own, reservation.access_code).status_code == 302


def test_a_free_stays_receipt_and_email_show_no_rate_lines(client, stay, mailoutbox):  # noqa: F811
    from billing.models import Rate

    prop, own, _, reservation = stay
    Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=30),
        energy_price_per_kwh=Decimal("0.40"),
        connection_fee=Decimal("1.00"),
    )
    token, session = _running(own, reservation)
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed", stopped_at=timezone.now(), meter_stop_wh=6_000, stop_reason="Remote"
    )
    gs = GuestSession.objects.get(token=token)
    GuestSession.objects.filter(pk=gs.pk).update(email="anna@example.com")
    from guest.services import guest_session_finish

    guest_session_finish(session_id=session.pk)
    page = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert "Charging is included in your stay at Cabin 1: nothing to pay." in page
    assert "Total" not in page and "0.40" not in page and "being calculated" not in page
    assert "5.000 kWh" in page
    body = mailoutbox[-1].body
    assert "nothing to pay" in body and "Total" not in body
    # The same session paid at the property's rate (charging billed) shows its lines.
    StayPolicy.objects.update_or_create(
        property=prop, defaults={"charging": StayPolicy.Charging.BILLED}
    )
    assert "Total" in client.get(f"/s/receipt/{gs.key}/").content.decode()
