"""A hub works like an eMSP, with routing headers: its parties' tokens, and pushes addressed to them."""

import json

import pytest
from django.utils import timezone

from authorization.models import MobilityServiceProvider, Token
from chargers.models import ChargingSession
from roaming import commands, services
from roaming.models import Delivery
from tests.roaming.conftest import PARTNER_TOKEN, auth, connected_partner
from tests.roaming.emsp_stub import EmspStub


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    emsp = EmspStub()
    yield emsp
    emsp.close()


@pytest.fixture
def hub(operator, stub):
    partner = connected_partner(
        operator["org"],
        base=stub.base + "/2.2.1",
        outgoing_token="cpo-calls-hub",
        role="HUB",
        country_code="EU",
        party_id="HUB",
    )
    stub.cpo_token = partner.outgoing_token
    return partner


def _token(cc, pid, uid):
    return {
        "country_code": cc,
        "party_id": pid,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{cc}-{pid}-{uid}",
        "issuer": "Behind the hub",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2024-01-01T00:00:00Z",
    }


def test_a_hub_pushes_tokens_of_the_parties_behind_it_each_its_own_provider(client, operator, hub):
    for cc, pid, uid in (("FR", "ABC", "F001"), ("BE", "XYZ", "B001")):
        response = client.put(
            f"/ocpi/2.2.1/tokens/{cc}/{pid}/{uid}",
            json.dumps(_token(cc, pid, uid)),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(),
            HTTP_OCPI_FROM_COUNTRY_CODE=cc,
            HTTP_OCPI_FROM_PARTY_ID=pid,
            HTTP_OCPI_TO_COUNTRY_CODE="NL",
            HTTP_OCPI_TO_PARTY_ID="EVB",
        )
        assert response.status_code == 201
        assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == (cc, pid)
    french = MobilityServiceProvider.objects.get(
        organization=operator["org"], country_code="FR", party_id="ABC"
    )
    assert Token.objects.get(uid="F001").msp == french
    assert Token.objects.get(uid="B001").msp.party_id == "XYZ"


def test_pushes_to_a_hub_are_addressed_to_the_party_or_broadcast_to_the_hub(operator, hub, stub):
    services.delivery_enqueue(
        partner=hub,
        module="cdrs",
        object_key="cdr:9",
        method="POST",
        path="",
        body={"id": "CDR-9"},
        to_party=("FR", "ABC"),
    )
    services.delivery_enqueue(
        partner=hub,
        module="locations",
        object_key="evse:1/X*1",
        method="PATCH",
        path="/NL/EVB/1/X*1",
        body={"status": "AVAILABLE"},
        coalesce=True,
    )

    services.deliveries_send(partner_id=hub.pk)

    (cdr,) = stub.requests_to("cdrs")
    assert (cdr["headers"]["OCPI-to-country-code"], cdr["headers"]["OCPI-to-party-id"]) == (
        "FR",
        "ABC",
    )
    assert (cdr["headers"]["OCPI-from-country-code"], cdr["headers"]["OCPI-from-party-id"]) == (
        "NL",
        "EVB",
    )
    (patch,) = stub.requests_to("locations")
    assert (patch["headers"]["OCPI-to-country-code"], patch["headers"]["OCPI-to-party-id"]) == (
        "EU",
        "HUB",
    )
    assert Delivery.objects.filter(status="sent").count() == 2


def _put(client, token, cc, pid, uid, **fields):
    return client.put(
        f"/ocpi/2.2.1/tokens/{cc}/{pid}/{uid}",
        json.dumps({**_token(cc, pid, uid), **fields}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token),
    )


def test_a_hub_routes_only_parties_not_connected_directly_nor_routed_by_another_hub(
    client, operator, hub
):
    # The operator's own eMSP partner DE*EMS speaks for its party; the hub may not.
    connected_partner(operator["org"], token="direct-emsp", name="Direct eMSP")
    assert _put(client, "direct-emsp", "DE", "EMS", "D001").status_code == 201
    assert _put(client, PARTNER_TOKEN, "DE", "EMS", "D001", valid=False).status_code == 404
    assert _put(client, PARTNER_TOKEN, "DE", "EMS", "D002").status_code == 404
    read = client.get("/ocpi/2.2.1/tokens/DE/EMS/D001", HTTP_AUTHORIZATION=auth(PARTNER_TOKEN))
    assert read.status_code == 404
    assert Token.objects.get(uid="D001").valid is True
    assert not Token.objects.filter(uid="D002").exists()

    # FR*ABC is routed by the first hub that pushed for it; a second connected hub gets 404.
    assert _put(client, PARTNER_TOKEN, "FR", "ABC", "F001").status_code == 201
    connected_partner(
        operator["org"],
        token="second-hub",
        name="Second hub",
        role="HUB",
        country_code="EU",
        party_id="HB2",
    )
    assert _put(client, "second-hub", "FR", "ABC", "F001", valid=False).status_code == 404
    read = client.get("/ocpi/2.2.1/tokens/FR/ABC/F001", HTTP_AUTHORIZATION=auth("second-hub"))
    assert read.status_code == 404
    assert Token.objects.get(uid="F001").valid is True

    # Once the first hub is unregistered, the party is the hub's that routes it now.
    services.partner_unregister(partner=hub)
    assert _put(client, "second-hub", "FR", "ABC", "F001", valid=False).status_code == 200
    assert Token.objects.get(uid="F001").valid is False


def test_a_hub_cannot_stop_a_session_of_a_party_it_does_not_route(client, operator, hub):
    connected_partner(operator["org"], token="direct-emsp", name="Direct eMSP")
    assert _put(client, "direct-emsp", "DE", "EMS", "D001").status_code == 201
    assert _put(client, PARTNER_TOKEN, "FR", "ABC", "F001").status_code == 201
    sessions = {}
    for number, uid in enumerate(("D001", "F001"), start=1):
        sessions[uid] = ChargingSession.objects.create(
            charger=operator["cp_public"],
            connector_id=number,
            transaction_id=number,
            id_tag=uid,
            token=Token.objects.get(uid=uid),
            started_at=timezone.now(),
            meter_start_wh=0,
        )

    def stop(uid):
        return commands.command_receive(
            partner=hub,
            command="STOP_SESSION",
            body={"response_url": "https://hub.example/cb", "session_id": str(sessions[uid].pk)},
        )

    assert stop("D001").result == "REJECTED"
    assert stop("F001").result == "ACCEPTED"
