"""Hosts see their tickets and the assistant's findings in the portal; the dashboard uses them too."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.models import Connector
from support.assistant.service import assistant_answer
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db):
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    seen = timezone.now() - timedelta(hours=3)
    ChargerFactory(property=prop, station_id="HB-OFF", last_seen_at=seen, disconnected_at=seen)
    faulted = ChargerFactory(
        property=prop, station_id="HB-FLT", connection_id="c", last_seen_at=timezone.now()
    )
    Connector.objects.create(
        charger=faulted, connector_id=1, status="Faulted", error_code="HighTemperature"
    )
    other = ChargerFactory(station_id="THEIRS-1", last_seen_at=seen)
    mine = assistant_answer(
        message="charger offline, that didn't help", station_id="HB-OFF", email="g@example.com"
    )
    theirs = assistant_answer(
        message="charger offline, that didn't help", station_id="THEIRS-1", email="x@example.com"
    )
    host = MembershipFactory(organization=prop.organization, role="viewer").user
    return host, mine.ticket, theirs.ticket, other


def test_dashboard_needs_attention_shows_the_assistants_findings(client, setup):
    host, *_ = setup
    client.force_login(host)
    body = client.get("/").content.decode()
    assert 'data-finding="faulted"' in body and "it is too hot inside the charger" in body
    assert 'data-finding="offline"' in body and "Charger HB-OFF has been offline since" in body
    assert "THEIRS-1" not in body
    assert "1 open support ticket" in body


def test_host_sees_own_tickets_only(client, setup):
    host, mine, theirs, _other = setup
    from support.models import Ticket

    client.force_login(host)
    page = client.get("/support/tickets/").content.decode()
    mine_ref = Ticket.objects.get(pk=mine).reference
    theirs_ref = Ticket.objects.get(pk=theirs).reference
    assert mine_ref in page and theirs_ref not in page
    detail = client.get(f"/support/tickets/{mine_ref}/")
    assert (
        detail.status_code == 200
        and "Charger HB-OFF has been offline since" in detail.content.decode()
    )
    assert client.get(f"/support/tickets/{theirs_ref}/").status_code == 404


def test_needs_attention_rows_are_the_assistants_own_facts(client, setup):
    # The dashboard is fed by the diagnosis the assistant answers with: the fact the host gets from
    # the assistant about a charger is, word for word, the one on its "Needs attention" row.
    from authorization.models import AuthorizationDecision

    host, *_ = setup
    prop = host.memberships.first().organization.properties.first()
    refusing = ChargerFactory(
        property=prop, station_id="HB-REF", connection_id="c", last_seen_at=timezone.now()
    )
    AuthorizationDecision.objects.create(
        uid="04A1B2C3",
        uid_normalized="04A1B2C3",
        station_id="HB-REF",
        context="local",
        status="Invalid",
        reason="not_in_local_group",
        step=9,
        message="Not in a local group",
        organization=prop.organization,
    )
    client.force_login(host)
    dashboard = client.get("/").content.decode()
    for station, message, row in (
        ("HB-FLT", "the plug is in and nothing happens", "faulted"),
        ("HB-OFF", "charger is offline", "offline"),
        (refusing.station_id, "my card was rejected", "refused"),
    ):
        answer = client.post(
            "/api/v1/support/assistant/",
            {"message": message, "context": {"station_id": station}},
            content_type="application/json",
        ).json()
        fact = next(
            f
            for f in answer["facts"]
            if f.startswith(("Connector 1 reports", "Charger HB-OFF has been", "Card 04A1"))
        )
        assert f'data-finding="{row}"' in dashboard
        assert fact in dashboard.replace("&#x27;", "'"), (fact, row)
