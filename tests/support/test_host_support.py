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
    faulted = ChargerFactory(property=prop, station_id="HB-FLT", connection_id="c", last_seen_at=timezone.now())
    Connector.objects.create(charger=faulted, connector_id=1, status="Faulted", error_code="HighTemperature")
    other = ChargerFactory(station_id="THEIRS-1", last_seen_at=seen)
    mine = assistant_answer(message="charger offline, that didn't help", station_id="HB-OFF", email="g@example.com")
    theirs = assistant_answer(message="charger offline, that didn't help", station_id="THEIRS-1", email="x@example.com")
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
    assert detail.status_code == 200 and "Charger HB-OFF has been offline since" in detail.content.decode()
    assert client.get(f"/support/tickets/{theirs_ref}/").status_code == 404
