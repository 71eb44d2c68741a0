"""Seed 003 §1: "If the charger is still offline ... after these steps, contact support". Once the
assistant has given every step and the person says they did them while the live data still
shows the charger offline, a person takes it over; a promise to try is no report. And "what
about the proxy?" gets seed 001's path (Chargers > View > Proxy)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from support.assistant.service import assistant_answer
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    seen = timezone.now() - timedelta(hours=3)
    ChargerFactory(property=prop, station_id="HB-OFF", last_seen_at=seen, disconnected_at=seen)
    ChargerFactory(
        property=prop, station_id="HB-ON", connection_id="c", last_seen_at=timezone.now()
    )
    return MembershipFactory(organization=prop.organization, role="manager").user


def _first(user, station_id="HB-OFF"):
    answer = assistant_answer(
        message=f"My charger {station_id} shows offline since this morning at 9:00, what should I check?",
        user=user,
    )
    assert answer.ticket is None
    return answer


def test_did_the_steps_and_still_offline_goes_to_a_person(host):
    first = _first(host)
    assert "breaker" in first.reply
    then = assistant_answer(
        message="I checked the breaker and the network is fine.",
        conversation_key=first.conversation,
        user=host,
    )
    assert then.ticket is not None
    assert "passed this to a person" in then.reply


@pytest.mark.parametrize("message", ["ok I'll try that", "will do, give me a minute"])
def test_a_promise_to_try_is_no_report(host, message):
    first = _first(host)
    then = assistant_answer(message=message, conversation_key=first.conversation, user=host)
    assert then.ticket is None


def test_the_proxy_path_is_answered_and_said_to_need_the_connection(host):
    first = _first(host)
    then = assistant_answer(
        message="And what about the proxy?", conversation_key=first.conversation, user=host
    )
    assert "Chargers › View › Proxy (/chargers/HB-OFF/proxy/)" in then.reply
    assert "Leader" in then.reply
    assert "while it is offline here" in then.reply
    assert then.ticket is None  # a question, not a report of the steps


def test_a_guest_is_told_the_host_sees_the_proxy():
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    ChargerFactory(property=prop, station_id="HB-OFF", last_seen_at=timezone.now())
    answer = assistant_answer(message="is HB-OFF behind a proxy?", station_id="HB-OFF")
    assert "shown to its site host (Chargers › View › Proxy)" in answer.reply
    assert "/chargers/" not in answer.reply


def test_a_charger_online_again_is_not_handed_over_for_the_steps(host):
    first = _first(host, "HB-ON")
    then = assistant_answer(
        message="I checked the breaker and the network is fine.",
        conversation_key=first.conversation,
        user=host,
    )
    assert then.ticket is None


def test_a_host_is_pointed_at_the_setup_card_of_a_charger_that_never_connected(host):
    ChargerFactory(
        property=PropertyFactory(organization=host.memberships.get().organization),
        station_id="HB-NEW",
    )
    answer = assistant_answer(message="HB-NEW is offline", user=host)
    assert any("/chargers/HB-NEW/setup-card/" in fact for fact in answer.facts)
    guest = assistant_answer(message="HB-NEW is offline", station_id="HB-NEW")
    assert not any("setup-card" in fact for fact in guest.facts)


def test_the_overview_of_a_charger_that_never_connected_links_its_setup_card(client, host):
    charger = ChargerFactory(
        property=PropertyFactory(organization=host.memberships.get().organization),
        station_id="HB-NEW",
    )
    client.force_login(host)
    body = client.get(f"/chargers/{charger.station_id}/").content.decode()
    assert 'href="/chargers/HB-NEW/setup-card/" id="setup-card-link"' in body
    card = client.get("/chargers/HB-NEW/setup-card/")
    assert card.status_code == 200
    # Every subprotocol the endpoint takes (chargers/connections/handshake.py SUBPROTOCOLS).
    assert "ocpp1.6 / ocpp2.0.1 / ocpp2.1" in card.content.decode()
