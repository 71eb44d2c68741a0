"""A reservation's access code on the guest page: starts its unit's charger without payment during the
stay; refused before check-in (minus grace), at another unit's charger, and when the cap is used."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authorization.models import AuthorizationDecision, Token
from chargers.models import ChargingSession, Command
from guest import stays as guest_stays
from guest.models import GuestSession
from stays.models import Reservation, StayPolicy, Unit
from tests.factories import ChargerFactory, PropertyFactory
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db


class FakeCharger:
    def __init__(self):
        self.calls = []

    def __call__(self, charger, action, payload, **kwargs):
        self.calls.append((charger.station_id, action, payload))
        return Command(
            charger=charger,
            action=action,
            payload=payload,
            status=Command.Status.ANSWERED,
            response={"status": "Accepted"},
        )


@pytest.fixture
def fake_charger(monkeypatch):
    fake = FakeCharger()
    monkeypatch.setattr(guest_stays, "send_command_sync", fake)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return fake


@pytest.fixture
def stay():
    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    cabin1 = Unit.objects.create(property=prop, name="Cabin 1", kind="cabin")
    cabin2 = Unit.objects.create(property=prop, name="Cabin 2", kind="cabin")
    # Unit chargers are private: no card or guest payment, only the unit's reservations.
    own = make_online(
        ChargerFactory(property=prop, unit=cabin1, station_id="CABIN-1", access_mode="private")
    )
    other = make_online(
        ChargerFactory(property=prop, unit=cabin2, station_id="CABIN-2", access_mode="private")
    )
    now = timezone.now()
    reservation = Reservation.objects.create(
        property=prop,
        unit=cabin1,
        guest_name="Anna Smith",
        guest_email="anna@example.com",
        check_in=now - timedelta(days=1),
        check_out=now + timedelta(days=2),
    )
    return prop, own, other, reservation


def _post(client, charger, code):
    return client.post(f"/s/{charger.station_id}/stay/", {"code": code})


def test_code_starts_the_units_charger_without_payment_and_the_decision_names_the_reservation(
    client, stay, fake_charger
):
    _, own, _, reservation = stay
    response = _post(client, own, reservation.access_code.lower())  # typed in lower case
    assert response.status_code == 302 and "/s/session/" in response["Location"]
    gs = GuestSession.objects.get()
    assert (
        gs.state == GuestSession.State.STARTING and gs.payment_id is None and gs.amount_held is None
    )
    assert fake_charger.calls == [
        ("CABIN-1", "RemoteStartTransaction", {"connectorId": 1, "idTag": gs.id_tag})
    ]
    decision = AuthorizationDecision.objects.get()
    assert decision.reason == "accepted_reservation" and decision.reservation_id == reservation.pk
    assert decision.status == "Accepted" and decision.station_id == "CABIN-1"
    token = Token.objects.get(uid=gs.id_tag)
    assert token.reservation_id == reservation.pk and token.type == Token.Type.GUEST


def test_the_chargers_start_transaction_is_accepted_for_the_reservation_token(
    stay, fake_charger, client
):
    """StartTransaction decides from the stored token and charger (token_facts, charger_facts)."""
    from authorization.decisions import Context, decide
    from authorization.services import token_with_facts
    from chargers.sessions.services import charger_facts

    _, own, other, reservation = stay
    _post(client, own, reservation.access_code)
    uid = GuestSession.objects.get().id_tag
    _, facts = token_with_facts(uid, own.property.organization_id)
    decision = decide(facts, charger_facts(own), Context.START_TRANSACTION, now=timezone.now())
    assert decision.reason == "accepted_reservation" and decision.reservation_id == reservation.pk
    elsewhere = decide(facts, charger_facts(other), Context.START_TRANSACTION, now=timezone.now())
    assert elsewhere.reason == "reservation_other_unit"


def test_another_units_charger_is_refused_with_the_prompt_and_the_reason(
    client, stay, fake_charger
):
    _, _, other, reservation = stay
    response = _post(client, other, reservation.access_code)
    assert response.status_code == 403
    assert (
        b"This code is for Cabin 1 and does not start this charger. Your charger: CABIN-1."
        in response.content
    )
    decision = AuthorizationDecision.objects.get()
    assert decision.reason == "reservation_other_unit" and decision.reservation_id == reservation.pk
    assert fake_charger.calls == [] and not GuestSession.objects.exists()


def test_before_check_in_minus_grace_it_is_refused_as_not_active(client, stay, fake_charger):
    _, own, _, reservation = stay
    StayPolicy.objects.create(property=reservation.property, grace_before_minutes=60)
    start = timezone.now() + timedelta(hours=3)
    Reservation.objects.filter(pk=reservation.pk).update(
        check_in=start, check_out=start + timedelta(days=2)
    )
    response = _post(client, own, reservation.access_code)
    assert response.status_code == 403
    assert b"Your reservation allows charging from" in response.content
    assert AuthorizationDecision.objects.get().reason == "reservation_not_active"
    assert fake_charger.calls == []
    # Within the grace hour before check-in it starts.
    Reservation.objects.filter(pk=reservation.pk).update(
        check_in=timezone.now() + timedelta(minutes=50)
    )
    assert _post(client, own, reservation.access_code).status_code == 302


def test_an_unknown_code_a_cancelled_stay_and_a_used_cap_are_refused(client, stay, fake_charger):
    prop, own, _, reservation = stay
    assert _post(client, own, "NOPE1234").status_code == 404
    Reservation.objects.filter(pk=reservation.pk).update(status=Reservation.Status.CANCELLED)
    response = _post(client, own, reservation.access_code)
    assert response.status_code == 403 and b"not confirmed" in response.content
    Reservation.objects.filter(pk=reservation.pk).update(status=Reservation.Status.CONFIRMED)
    StayPolicy.objects.create(property=prop, kwh_cap=Decimal("10"))
    token = Token.objects.create(
        uid="SEARLIER01",
        type=Token.Type.GUEST,
        organization=prop.organization,
        reservation=reservation,
    )
    ChargingSession.objects.create(
        charger=own,
        connector_id=1,
        transaction_id=991,
        id_tag=token.uid,
        token=token,
        started_at=timezone.now() - timedelta(hours=5),
        stopped_at=timezone.now() - timedelta(hours=1),
        meter_start_wh=0,
        meter_stop_wh=10_000,
        status="completed",
    )
    response = _post(client, own, reservation.access_code)
    assert response.status_code == 403 and b"included in your stay is used up" in response.content
    assert AuthorizationDecision.objects.order_by("-id").first().reason == "reservation_cap_reached"


def test_when_charging_is_billed_the_code_leads_to_the_normal_payment_page(
    client, stay, fake_charger
):
    prop, own, _, reservation = stay
    StayPolicy.objects.create(property=prop, charging=StayPolicy.Charging.BILLED)
    response = _post(client, own, reservation.access_code)
    assert response.status_code == 302 and response["Location"].rstrip("/").endswith("/s/CABIN-1")
    assert fake_charger.calls == [] and not GuestSession.objects.exists()


def test_the_stay_link_lists_the_guests_chargers(client, stay):
    _, own, other, reservation = stay
    page = client.get(f"/s/stay/{reservation.access_code}/").content.decode()
    assert "CABIN-1" in page and "CABIN-2" not in page and "Charging is included" in page
    assert client.get("/s/stay/NOPE1234/").status_code == 404


def test_a_code_takes_the_free_port_when_another_guest_is_paying_for_the_first(
    client, stay, fake_charger
):
    _, own, _, reservation = stay
    make_online(own, ("Available", "Available"))
    # Another guest's start, waiting for the car on port 1 (their hold paid).
    GuestSession.objects.create(
        charger=own,
        connector_id=1,
        email="other@example.com",
        state=GuestSession.State.STARTING,
    )
    response = _post(client, own, reservation.access_code)
    assert response.status_code == 302, response.content.decode()[:500]
    assert fake_charger.calls[-1][1:] == (
        "RemoteStartTransaction",
        {"connectorId": 2, "idTag": GuestSession.objects.latest("pk").id_tag},
    )
