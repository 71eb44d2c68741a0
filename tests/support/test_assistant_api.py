"""POST /api/v1/support/assistant/: classification, live facts, scoping, and hand-off to a ticket."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authorization.decisions import REASONS
from authorization.models import AuthorizationDecision, TokenGroup
from billing.models import Payment, SessionCharge
from chargers.models import ChargingSession, Connector, OcppMessage
from support.assistant.diagnosis import GUEST_REASON_WORDS, _tz, when
from support.models import AssistantConversation, Ticket, VendorErrorCode
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


URL = "/api/v1/support/assistant/"


def ask(client, message, conversation=None, **context):
    response = client.post(
        URL, {"message": message, "conversation": conversation, "context": context}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def station(db):
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    return ChargerFactory(property=prop, station_id="HB-7", vendor="Acme", heartbeat_interval=60)


@pytest.fixture
def host_client(api_client, station):
    """The station's own host: they see the charger's full facts (times, codes)."""
    api_client.force_authenticate(
        MembershipFactory(organization=station.property.organization).user
    )
    return api_client


def _offline(charger, hours=3):
    at = timezone.now() - timedelta(hours=hours)
    charger.connection_id, charger.last_seen_at, charger.last_heartbeat_at = "", at, at
    charger.disconnected_at = at
    charger.save()
    return at


def _online(charger):
    now = timezone.now()
    charger.connection_id, charger.last_seen_at, charger.last_heartbeat_at = "c1", now, now
    charger.save()


def test_offline_charger_fact_names_since_when_and_last_heartbeat(host_client, station):
    at = _offline(station)
    answer = ask(host_client, "the charger is completely dead", station_id="HB-7")
    assert answer["topic"] == "charger_offline"
    # "since 21:10" the same day, "since 22 Nov 21:10" when that was yesterday (a run after midnight).
    since = when(at, _tz(station), timezone.now())
    assert (
        f"Charger HB-7 has been offline since {since} (last heartbeat 3 h ago)." in answer["facts"]
    )
    assert "breaker" in answer["reply"]  # offline: the power checks are the point
    assert answer["ticket"] is None
    assert answer["asks_for"] == ["occurred_at"]  # property and charger come from the station


def test_online_charger_skips_power_and_wifi_steps(host_client, station):
    _online(station)
    answer = ask(host_client, "is the charger down? it says unavailable", station_id="HB-7")
    assert answer["topic"] == "charger_offline"
    assert any(f.startswith("Charger HB-7 is online") for f in answer["facts"])
    assert "breaker is ON" not in answer["reply"] and "Wi-Fi or router" not in answer["reply"]


def test_faulted_connector_fact_explains_ocpp_and_vendor_code(host_client, station):
    _online(station)
    VendorErrorCode.objects.create(
        vendor="acme", code="E12", explanation="residual current detected"
    )
    Connector.objects.create(
        charger=station,
        connector_id=1,
        status="Faulted",
        error_code="GroundFailure",
        vendor_error_code="E12",
        status_timestamp=timezone.now(),
    )
    answer = ask(host_client, "the plug is in and nothing happens", station_id="HB-7")
    assert answer["topic"] == "not_charging"
    fault = next(f for f in answer["facts"] if f.startswith("Connector 1 reports Faulted"))
    assert "GroundFailure (vendor code E12: residual current detected)" in fault
    assert "ground-fault protection tripped" in fault


def test_seeded_vendor_code_is_explained_for_a_vendor_named_loosely(host_client, station):
    # The data migration seeds Alfen's published codes; the charger calls itself "Alfen BV".
    _online(station)
    station.vendor = "Alfen BV"
    station.save()
    Connector.objects.create(
        charger=station,
        connector_id=1,
        status="Faulted",
        error_code="GroundFailure",
        vendor_error_code="101",
        status_timestamp=timezone.now(),
    )
    answer = ask(host_client, "car wont charge", station_id="HB-7")
    fault = next(f for f in answer["facts"] if f.startswith("Connector 1 reports Faulted"))
    assert (
        "(vendor code 101: the 6 mA DC leakage sensor tripped (a ground fault) – Turn the charger off"
        in fault
    )


def test_vendor_code_of_another_vendor_is_not_explained(host_client, station):
    _online(station)
    station.vendor = "Alfenix"  # not Alfen: a prefix of the word is no match
    station.save()
    Connector.objects.create(
        charger=station,
        connector_id=1,
        status="Faulted",
        error_code="OtherError",
        vendor_error_code="101",
        status_timestamp=timezone.now(),
    )
    answer = ask(host_client, "car wont charge", station_id="HB-7")
    fault = next(f for f in answer["facts"] if f.startswith("Connector 1 reports Faulted"))
    assert "(vendor code 101)" in fault and "leakage" not in fault


def test_refused_card_fact_for_a_guest_shows_no_card_data_and_gives_the_cause(api_client, station):
    _online(station)
    station.token_groups.add(
        TokenGroup.objects.create(organization=station.property.organization, name="Residents")
    )
    AuthorizationDecision.objects.create(
        uid="04A1B2C3D4",
        uid_normalized="04A1B2C3D4",
        station_id="HB-7",
        context="local",
        status="Invalid",
        reason="not_in_local_group",
        step=9,
        message="host words",
        organization=station.property.organization,
    )
    answer = ask(api_client, "my card was rejected", station_id="HB-7")
    assert answer["topic"] == "no_permission"
    refusal = next(f for f in answer["facts"] if f.startswith("A card was refused here"))
    assert "04A1" not in " ".join(answer["facts"]) + answer["reply"]  # someone else's card
    assert "host words" not in refusal
    assert "not in this charger's local token group" in refusal


def _contract_refusal(station, reason, *, status="Invalid"):
    return AuthorizationDecision.objects.create(
        uid="NL-TNM-C12345678-X",
        uid_normalized="NLTNMC12345678X",
        station_id=station.station_id,
        context="local",
        status=status,
        reason=reason,
        step=2,
        message=REASONS[reason][1],
        organization=station.property.organization,
    )


def test_a_refused_plug_and_charge_contract_is_named_as_such_to_a_guest_with_the_way_out(
    api_client, station
):
    _online(station)
    _contract_refusal(station, "contract_revoked")
    answer = ask(
        api_client,
        "plug and charge doesn't work, my car says its contract was not accepted",
        station_id="HB-7",
    )
    refusal = next(f for f in answer["facts"] if "refused here" in f)
    assert refusal.startswith("A car's Plug & Charge contract was refused here")
    assert "revoked" in refusal and "start with a card or the charger's QR page" in refusal
    assert "NL-TNM" not in " ".join(answer["facts"]) + answer["reply"]  # nobody's contract id
    assert "access settings" not in refusal  # not the generic words


def test_a_refused_contract_is_named_with_its_emaid_and_the_host_message_to_its_host(
    host_client, station
):
    _online(station)
    _contract_refusal(station, "contract_unknown_to_issuer")
    answer = ask(host_client, "why was the car refused?", station_id="HB-7")
    refusal = next(f for f in answer["facts"] if "was refused" in f)
    assert refusal.startswith("The car's contract NL-TNM-C12345678-X (Plug & Charge) was refused")
    assert "was asked live and does not know it or refused it" in refusal


def test_every_refusal_reason_has_words_for_a_guest():
    refusing = {reason for reason in REASONS if not reason.startswith("accepted_")}
    assert refusing - set(GUEST_REASON_WORDS) == set()


def test_cost_question_returns_the_sessions_cost_lines_only_with_the_payment_email(
    api_client, station
):
    now = timezone.now()
    session = ChargingSession.objects.create(
        charger=station,
        connector_id=1,
        transaction_id=501,
        id_tag="G1",
        started_at=now - timedelta(hours=2),
        stopped_at=now - timedelta(hours=1),
        meter_start_wh=0,
        meter_stop_wh=8200,
        status="completed",
    )
    org = station.property.organization
    SessionCharge.objects.create(
        session=session,
        organization=org,
        currency="EUR",
        subtotal=Decimal("5.27"),
        tax=Decimal("0"),
        total=Decimal("5.27"),
        started_at=session.started_at,
        energy_wh=8200,
        lines=[
            {
                "kind": "connection_fee",
                "description": "Connection fee (once per session)",
                "amount": "1.00",
            },
            {"kind": "energy", "description": "Energy 8.200 kWh × 0.35 EUR/kWh", "amount": "2.87"},
            {
                "kind": "idle_fee",
                "description": "Idle fee: plugged in 27 min after charging finished, first 15 min free",
                "amount": "1.40",
            },
        ],
    )
    Payment.objects.create(
        organization=org,
        session=session,
        email="guest@example.com",
        currency="EUR",
        amount_held=Decimal("50"),
        amount_captured=Decimal("5.27"),
        reference="pay_abc12345",
        status="captured",
    )
    hidden = ask(api_client, "why is this session so expensive", session_id=session.pk)
    assert hidden["topic"] == "cost_breakdown"
    assert not any("Energy 8.200" in f for f in hidden["facts"])
    shown = ask(
        api_client,
        "why is this session so expensive",
        session_id=session.pk,
        email="guest@example.com",
    )
    cost = next(f for f in shown["facts"] if f.startswith("This session cost 5.27 EUR"))
    assert "Connection fee (once per session) = 1.00 EUR" in cost
    assert "Energy 8.200 kWh × 0.35 EUR/kWh = 2.87 EUR" in cost and "Idle fee" in cost


def test_didnt_help_hands_over_a_ticket_with_charger_state_and_recent_frames(api_client, station):
    _offline(station)
    for i in range(60):
        OcppMessage.objects.create(
            charger=station,
            direction="in",
            message_type=2,
            unique_id=str(i),
            action="Heartbeat",
            payload={},
        )
    first = ask(api_client, "charger shows offline", station_id="HB-7")
    assert first["ticket"] is None
    second = ask(api_client, "that didn't help", conversation=first["conversation"])
    assert second["topic"] == "charger_offline"
    ticket = Ticket.objects.get(pk=second["ticket"])
    assert f"#{ticket.reference}" in second["reply"] and "email" in second["asks_for"]
    assert ticket.source == Ticket.Source.ASSISTANT and ticket.topic == Ticket.Topic.OFFLINE
    assert ticket.charger == station and ticket.organization == station.property.organization
    assert (
        ticket.bundle["charger"]["station_id"] == "HB-7"
        and ticket.bundle["charger"]["online"] is False
    )
    assert len(ticket.bundle["frames"]) == 50 and ticket.bundle["frames"][0]["unique_id"] == "59"
    assert "that didn't help" in ticket.message
    # The email given afterwards lands on the same ticket.
    third = ask(api_client, "it's me@example.com", conversation=first["conversation"])
    assert third["ticket"] == ticket.pk
    ticket.refresh_from_db()
    assert ticket.email == "me@example.com"
    assert Ticket.objects.count() == 1


def test_refund_request_goes_to_a_person_once_the_details_are_in(api_client, station):
    answer = ask(api_client, "why did you take 38 dollars, I want it back", email="g@example.com")
    assert answer["topic"] == "billing_dispute"
    assert answer["ticket"] is None  # only a person refunds, but first the seed's details
    assert answer["asks_for"] == ["property", "occurred_at", "card_last4"]
    more = ask(
        api_client,
        "Harbour Hotel, yesterday, card ending 1234",
        conversation=answer["conversation"],
        email="g@example.com",
    )
    assert more["ticket"] is not None and more["asks_for"] == []
    ticket = Ticket.objects.get(pk=more["ticket"])
    assert ticket.details["amount"] == "38 dollars" and ticket.email == "g@example.com"
    assert ticket.details["card_last4"] == "1234" and ticket.details["property"] == "Harbour Hotel"
    assert (
        f"#{ticket.reference}" in more["reply"]
        and "answer by email within 24 hours" in more["reply"]
    )


def test_host_sees_own_charger_but_another_organizations_only_as_its_guest_page(
    api_client, station
):
    other = ChargerFactory(station_id="OTHER-1")
    _offline(other)
    _offline(station)
    host = MembershipFactory(organization=station.property.organization).user
    api_client.force_authenticate(host)
    own = ask(api_client, "charger offline", station_id="HB-7")
    assert any(f.startswith("Charger HB-7 has been offline") for f in own["facts"])
    foreign = ask(api_client, "charger offline", station_id="OTHER-1")
    assert foreign["facts"][0] == (
        "Charger OTHER-1 is out of order: it is offline right now, so no session can start on it."
    )
    assert not any("since" in f or "heartbeat" in f for f in foreign["facts"])
    unknown = ask(api_client, "charger offline", station_id="NOPE-9")
    assert unknown["facts"] == ["No charger with Station ID NOPE-9 is known in your organizations."]


def test_a_conversation_of_someone_else_is_not_continued(api_client, station):
    first = ask(api_client, "charger offline", station_id="HB-7")
    host = MembershipFactory(organization=station.property.organization).user
    api_client.force_authenticate(host)
    again = ask(api_client, "that didn't help", conversation=first["conversation"])
    assert again["conversation"] != first["conversation"]
    assert (
        AssistantConversation.objects.get(key=first["conversation"]).messages[-1]["role"]
        == "assistant"
    )


def test_bad_input_is_a_400_and_stores_nothing(api_client):
    response = api_client.post(URL, {"message": "", "context": {"session_id": "x"}}, format="json")
    assert response.status_code == 400
    assert AssistantConversation.objects.count() == 0
