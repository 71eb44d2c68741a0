"""Issue 47 item 1: no false alarms. A finished guest session, a driver's and a roaming card are
recorded as what they are, and only refusals still to act on reach the dashboard's "Needs
attention" and the Support page."""

from io import StringIO

import pytest
from asgiref.sync import async_to_sync

from authorization.models import AuthorizationDecision, MobilityServiceProvider, Token
from chargers.models import Command
from guest import services as guest_services
from guest.models import GuestSession
from support.findings import host_findings
from tests.drivers.conftest import save_card, sign_up
from tests.factories import ChargerFactory, MembershipFactory
from tests.guest import conftest as guest_fixtures
from tests.guest.conftest import make_online
from tests.guest.test_views_flow import start_and_pay
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

# The guest tests' charger, its property and rate.
site, guest_charger, rate = guest_fixtures.site, guest_fixtures.guest_charger, guest_fixtures.rate

TS = "2026-11-21T10:00:00Z"


@pytest.fixture
def remote_start_accepted(monkeypatch):
    def send(charger, action, payload, **kwargs):
        return Command(
            charger=charger,
            action=action,
            payload=payload,
            status="answered",
            response={"status": "Accepted"},
        )

    monkeypatch.setattr(guest_services, "send_command_sync", send)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)


@pytest.fixture
def host(site):
    return MembershipFactory(organization=site.organization, role="owner").user


async def _charge(station_id: str, id_tag: str) -> tuple[dict, dict]:
    """What the charger does: it starts the transaction and, once the car is full, stops it with
    the card (a real charger sends the idTag with its stop)."""
    charger = OcppTestClient(station_id)
    assert (await charger.connect())[0]
    await charger.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    started = await charger.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": id_tag, "meterStart": 100_000, "timestamp": TS},
    )
    stopped = await charger.result(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "idTag": id_tag,
            "meterStop": 110_000,
            "timestamp": "2026-11-21T11:00:00Z",
            "reason": "EVDisconnected",
        },
    )
    await charger.close()
    return started, stopped


def _attention(client) -> tuple[str, str]:
    return (
        client.get("/").content.decode(),
        client.get("/support/tickets/").content.decode(),
    )


def test_a_full_guest_session_leaves_no_alarm(
    client, guest_charger, rate, remote_start_accepted, host
):
    _confirm, paid = start_and_pay(client, guest_charger)  # the QR page: start, pay, return
    assert paid.status_code == 302
    gs = GuestSession.objects.get()
    started, stopped = async_to_sync(_charge)(guest_charger.station_id, gs.id_tag)
    assert started["idTagInfo"]["status"] == "Accepted"
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FINISHED
    decisions = {
        d.context: d for d in AuthorizationDecision.objects.filter(uid=gs.id_tag).order_by("id")
    }
    # The remote start and the charger's start are the guest's, not "one of your own cards".
    assert decisions["remote_app"].reason == "accepted_guest"
    assert decisions["start_transaction"].reason == "accepted_guest"
    assert "one of your own cards" not in decisions["start_transaction"].message
    # The stop is answered with the spent token's status, and that is no card to fix.
    assert stopped["idTagInfo"]["status"] == "Invalid"
    assert decisions["stop_transaction"].reason == "guest_token_spent"
    assert "Tick 'valid'" not in decisions["stop_transaction"].message

    make_online(guest_charger)  # the test's charger hung up; a real one stays connected
    assert host_findings(host) == []
    client.force_login(host)
    dashboard, support = _attention(client)
    assert 'data-finding="refused"' not in dashboard and gs.id_tag not in dashboard
    assert gs.id_tag not in support and "Nothing needs attention" in support


def test_a_stop_recorded_before_the_fix_as_token_invalid_is_no_alarm(guest_charger, host):
    # Rows written before the reason existed: a guest token's refusal at its stop.
    token = Token.objects.create(
        uid="0A1B2C3D4E5F60718293",
        type=Token.Type.GUEST,
        organization=guest_charger.property.organization,
        valid=False,
        label=Token.GUEST_SESSION_LABEL,
    )
    AuthorizationDecision.objects.create(
        uid=token.uid,
        uid_normalized=token.uid_normalized,
        token=token,
        station_id=guest_charger.station_id,
        context="stop_transaction",
        status="Invalid",
        reason="token_invalid",
        step=4,
        message="This card is known but its 'valid' box is not ticked.",
    )
    assert [f for f in host_findings(host) if f.problem == "refused"] == []


def test_a_drivers_token_is_labelled_the_drivers(
    client, guest_charger, rate, remote_start_accepted
):
    sign_up(client, "tap@example.com")
    save_card(client)
    response = client.post(f"/driver/start/{guest_charger.station_id}/", {"connector": "1"})
    assert response.status_code == 302
    gs = GuestSession.objects.get()
    assert Token.objects.get(pk=gs.token_id).label == Token.DRIVER_SESSION_LABEL
    started, _stopped = async_to_sync(_charge)(guest_charger.station_id, gs.id_tag)
    assert started["idTagInfo"]["status"] == "Accepted"
    reasons = list(
        AuthorizationDecision.objects.filter(uid=gs.id_tag)
        .order_by("id")
        .values_list("context", "reason")
    )
    assert reasons[:2] == [
        ("remote_app", "accepted_driver"),
        ("start_transaction", "accepted_driver"),
    ]
    assert reasons[2] == ("stop_transaction", "guest_token_spent")


def test_a_roaming_card_is_labelled_roaming_and_its_refusal_names_its_provider(site, host):
    charger = make_online(
        ChargerFactory(property=site, station_id="HB-PUB-1", access_mode="public")
    )
    msp = MobilityServiceProvider.objects.create(
        organization=site.organization, name="RoamNet", country_code="NL", party_id="RMS"
    )
    Token.objects.create(uid="NLRMS0001", msp=msp, organization=None)
    stale = Token.objects.create(uid="NLRMS0002", msp=msp, organization=None, valid=False)

    async def present():
        cp = OcppTestClient(charger.station_id)
        assert (await cp.connect())[0]
        await cp.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        ok = await cp.result("Authorize", {"idTag": "NLRMS0001"})
        refused = await cp.result("Authorize", {"idTag": "NLRMS0002"})
        await cp.close()
        return ok, refused

    ok, refused = async_to_sync(present)()
    assert ok["idTagInfo"]["status"] == "Accepted"
    assert refused["idTagInfo"]["status"] == "Invalid"
    accepted = AuthorizationDecision.objects.get(uid="NLRMS0001")
    assert accepted.reason == "accepted_roaming" and "own cards" not in accepted.message
    refusal = AuthorizationDecision.objects.get(uid=stale.uid)
    assert refusal.reason == "msp_token_invalid"
    assert "mobility provider" in refusal.message and "Tick 'valid'" not in refusal.message
    # A roaming card its provider marked invalid is the provider's to fix, but the host may want
    # to know it was refused: it is listed, with the provider's advice.
    make_online(charger)
    findings = host_findings(host)
    assert [f.problem for f in findings] == ["refused"]
    assert any("its mobility provider marked it so" in fact for fact in findings[0].facts)


def test_a_refused_card_made_valid_leaves_the_list(client, site, host):
    charger = make_online(ChargerFactory(property=site, station_id="HB-OWN-1"))
    card = Token.objects.create(uid="04A1B2C3", organization=site.organization, valid=False)

    async def present():
        cp = OcppTestClient(charger.station_id)
        assert (await cp.connect())[0]
        await cp.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        answer = await cp.result("Authorize", {"idTag": "04A1B2C3"})
        await cp.close()
        return answer

    assert async_to_sync(present)()["idTagInfo"]["status"] == "Invalid"
    make_online(charger)
    client.force_login(host)
    dashboard, support = _attention(client)
    assert 'data-finding="refused"' in dashboard and "Card 04A1B2C3 was refused" in support
    assert "box is not ticked" in support  # the advice: tick 'valid' under Tokens
    # The host follows the advice: the card leaves both lists.
    card.valid = True
    card.save()
    assert host_findings(host) == []
    dashboard, support = _attention(client)
    assert 'data-finding="refused"' not in dashboard and "04A1B2C3" not in support


def test_a_fresh_demo_starts_without_a_refused_card():
    # `make run`: load_demo*, then the simulated chargers present the demo's cards at random.
    from django.core.management import call_command

    from authorization.decisions import Context
    from authorization.services import decide_sync
    from chargers.management.simulator import DEMO_CARDS
    from chargers.models import Charger
    from chargers.sessions.services import charger_facts

    for command in ("load_demo", "load_demo_billing", "load_demo_power"):
        call_command(command, stdout=StringIO())
    chargers = list(Charger.objects.filter(station_id__startswith="DEMO-"))
    assert len(chargers) == 4
    for charger in chargers:
        for uid in DEMO_CARDS:
            decision = decide_sync(uid=uid, charger=charger_facts(charger), context=Context.LOCAL)
            assert decision.accepted, (charger.station_id, uid, decision.reason)
    assert not AuthorizationDecision.objects.exclude(status="Accepted").exists()


def test_a_guest_page_refusal_leaves_the_list_once_guests_are_let_in(client, site, host):
    # Guest charging switched off at this charger (Locations): the QR page refuses every guest
    # and records it for the host (uid GUEST) ...
    charger = make_online(
        ChargerFactory(property=site, station_id="HB-NOGUEST", guest_charging_enabled=False)
    )
    client.get(f"/s/{charger.station_id}")
    refusal = AuthorizationDecision.objects.get(station_id=charger.station_id)
    assert (refusal.uid, refusal.reason) == ("GUEST", "charger_not_roaming")
    assert "'guest charging' under Locations" in refusal.message
    assert [f.problem for f in host_findings(host)] == ["refused"]
    # ... and the host does what the advice says: the refusal is solved, off the list.
    charger.guest_charging_enabled = True
    charger.save(update_fields=["guest_charging_enabled"])
    host = type(host).objects.get(pk=host.pk)  # a new request: the chargers are read again
    assert host_findings(host) == []
    client.force_login(host)
    dashboard, support = _attention(client)
    assert 'data-finding="refused"' not in dashboard and "Card GUEST" not in support
