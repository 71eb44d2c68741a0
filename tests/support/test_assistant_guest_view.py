"""Issue 47 item 6: an anonymous caller and the host of another organization learn about a charger
only what its guest page shows (availability, ports, price), and exactly the same."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authorization.models import TokenGroup
from billing.models import Rate
from chargers.models import Connector
from support.assistant.service import assistant_answer
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

# What only the charger's own host (and support) may learn: times, heartbeats, codes, group names.
PRIVATE = (
    "since",
    "heartbeat",
    "last message",
    "groundfailure",
    "e12",
    "vendor code",
    "staff cards",
    "ground-fault",
)


@pytest.fixture
def public_charger(db):
    prop = PropertyFactory(name="Dune Hotel", timezone="UTC", currency="EUR")
    now = timezone.now()
    charger = ChargerFactory(
        property=prop,
        station_id="DUNE-1",
        vendor="Acme",
        heartbeat_interval=60,
        connection_id="c1",
        last_seen_at=now,
        last_heartbeat_at=now,
    )
    Connector.objects.create(
        charger=charger,
        connector_id=1,
        status="Faulted",
        error_code="GroundFailure",
        vendor_error_code="E12",
        status_timestamp=now - timedelta(minutes=20),
    )
    Connector.objects.create(
        charger=charger, connector_id=2, status="Available", status_timestamp=now
    )
    group = TokenGroup.objects.create(organization=prop.organization, name="Staff cards")
    charger.token_groups.add(group)
    Rate.objects.create(
        property=prop,
        valid_from=now - timedelta(days=1),
        connection_fee=Decimal("0.50"),
        energy_price_per_kwh=Decimal("0.35"),
    )
    return charger


def _facts(user, message, station_id="DUNE-1"):
    answer = assistant_answer(message=message, station_id=station_id, user=user)
    return answer.facts, (answer.reply + " " + " ".join(answer.facts)).lower()


@pytest.mark.parametrize(
    "message",
    [
        "is this charger working?",
        "car wont charge at DUNE-1",
        "whats wrong with port 1, it blinks red",
        "how much does it cost to charge here",
    ],
)
def test_anonymous_and_other_host_get_only_the_guest_page_and_the_same(public_charger, message):
    stranger = MembershipFactory().user  # a host of another organization
    anonymous, anonymous_text = _facts(None, message)
    foreign, foreign_text = _facts(stranger, message)
    # The same about the charger (a host may also hear about their own account, e.g. their PMS).
    assert anonymous == [f for f in foreign if "DUNE-1" in f or f.startswith("Connector")]
    for secret in PRIVATE:
        assert secret not in anonymous_text, secret
        assert secret not in foreign_text, secret
    said = " ".join(anonymous)
    assert "Connector 1 is Faulted (out of service)." in anonymous
    assert "Connector 2 is Available (free)." in anonymous
    assert "Price at DUNE-1: 0.50 EUR connection fee, 0.35 EUR per kWh." in anonymous
    assert "residents or registered guests" in said


def test_the_charger_s_own_host_still_sees_the_codes_and_times(public_charger):
    host = MembershipFactory(organization=public_charger.property.organization).user
    _, text = _facts(host, "car wont charge")
    assert "groundfailure" in text and "vendor code e12" in text and "since" in text


def test_an_offline_charger_is_out_of_order_without_when_or_heartbeat(public_charger):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    public_charger.connection_id, public_charger.last_seen_at = "", an_hour_ago
    public_charger.last_heartbeat_at = public_charger.disconnected_at = an_hour_ago
    public_charger.save()
    stranger = MembershipFactory().user
    for user in (None, stranger):
        facts, text = _facts(user, "the charger is dead")
        assert facts[0] == (
            "Charger DUNE-1 is out of order: it is offline right now, so no session can start on it."
        )
        assert "since" not in text and "heartbeat" not in text


def test_a_ticket_from_a_guest_still_gives_support_the_full_facts(public_charger):
    answer = assistant_answer(
        message="port 1 broken, talk to a human", station_id="DUNE-1", email="g@example.com"
    )
    from support.models import Ticket

    ticket = Ticket.objects.get(pk=answer.ticket)
    assert "GroundFailure" in ticket.details["diagnosis"]
    assert "GroundFailure" not in answer.reply + " ".join(answer.facts)


def test_a_charger_without_a_property_is_unknown_to_anonymous_callers(db):
    # No guest page exists for it ("Station ID is Invalid" on the page, seed 000).
    ChargerFactory(station_id="LOOSE-1", property=None, last_seen_at=timezone.now())
    facts, _ = _facts(None, "charger offline", station_id="LOOSE-1")
    assert facts == [
        "No charger with Station ID LOOSE-1 is known: check the ID under the QR code (it is case-sensitive)."
    ]
