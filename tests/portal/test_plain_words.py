"""Issue 51 item 4: the charger's codes in plain words on the host's pages; the code itself one
hover away (title) or on the decision's own page, never beside the text."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from chargers.models import Connector

pytestmark = pytest.mark.django_db


def _owner(site) -> Client:
    client = Client()
    client.force_login(site.owner)
    return client


def test_connectors_and_stops_read_as_words(site):
    client = _owner(site)
    sid = site.charger.station_id
    Connector.objects.filter(charger=site.charger, connector_id=1).update(status="SuspendedEV")
    overview = client.get(f"/chargers/{sid}/").content.decode()
    assert "<strong>Whole charger</strong>" in overview and "#0" not in overview
    assert "Paused by the car" in overview and ">#1 SuspendedEV" not in overview
    # The faulted port: "Fault · Ground fault", its OCPP code in the title.
    assert re.search(r'title="OCPP: Faulted GroundFailure[^"]*">Fault · Ground fault<', overview)
    listing = client.get("/chargers/").content.decode()
    assert "1: Paused by the car" in listing and "2: Fault · Ground fault" in listing
    sessions = client.get(f"/chargers/{sid}/sessions/").content.decode()
    assert "stopped at the charger" in sessions and ">Local<" not in sessions
    assert "<th>Card</th>" in sessions and "idTag" not in sessions
    detail = client.get(f"/sessions/{site.session.pk}/").content.decode()
    assert "· stopped at the charger" in detail and "stop reason: Local" not in detail


def test_refusals_say_why_without_the_reason_code(site):
    client = _owner(site)
    sid = site.charger.station_id
    page = client.get(f"/chargers/{sid}/authorizations/").content.decode()
    assert "This card is not known here." in page
    assert "unknown_token" not in page
    logs = client.get(f"/chargers/{sid}/logs/").content.decode()
    assert "unknown_token" not in logs
    # The code stays on the decision's own page, for support and the curious.
    detail = client.get(f"/authorizations/{site.decision.pk}/").content.decode()
    assert "unknown_token" in detail


def test_prices_use_the_receipts_words(site):
    """One vocabulary: the prices pages say Connection fee and Processing fee, as the receipt."""
    client = _owner(site)
    for path in ("/billing/prices/", f"/billing/properties/{site.prop.pk}/rates/"):
        page = client.get(path).content.decode()
        assert "Connection fee" in page, path
        assert "Start fee" not in page and "Card fee" not in page, path
    rates = client.get(f"/billing/properties/{site.prop.pk}/rates/").content.decode()
    assert "Processing fee" in rates


def test_a_cards_answer_and_a_profiles_session_read_as_words(site):
    """The card's answer on the session page in words (the OCPP code in its title), and a
    charging profile tied to a session says so, not its raw transaction UUID in the port cell."""
    from chargers.models import ChargingProfile, ChargingSession

    ChargingSession.objects.filter(pk=site.session.pk).update(id_tag_status="ConcurrentTx")
    client = _owner(site)
    detail = client.get(f"/sessions/{site.session.pk}/").content.decode()
    assert 'title="OCPP: ConcurrentTx">Already charging elsewhere</span>' in detail
    assert ">ConcurrentTx<" not in detail
    uuid = "7f3a9c2e-1b4d-4e8f-9a6b-2c5d8e1f4a7b"
    ChargingSession.objects.create(  # the 2.0.1 transaction the profile is for, still running
        charger=site.charger,
        connector_id=1,
        transaction_id=4242,
        ocpp_transaction_id=uuid,
        id_tag=site.token.uid,
        started_at=site.session.started_at,
        status="active",
    )
    ChargingProfile.objects.create(
        charger=site.charger,
        evse_id=1,
        profile_id=7,
        stack_level=1,
        purpose="TxProfile",
        kind="Absolute",
        transaction_id=uuid,
        profile={"chargingSchedule": []},
    )
    response = client.get(f"/chargers/{site.charger.station_id}/smart-charging/")
    assert response.status_code == 200
    page = response.content.decode()
    cell = re.search(r'<td data-label="Where">(.*?)</td>', page)
    assert cell is not None and "for one session" in cell.group(1), page[page.find("<tbody") :][
        :600
    ]
    assert f"tx {uuid}" not in page and f">{uuid}<" not in page
