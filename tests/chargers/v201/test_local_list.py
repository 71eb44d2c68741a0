"""Local authorization list for a 2.0.1 charger (D01/D02): the same list as for 1.6, sent in the
2.0.1 shape, full first and differential once the charger's version matches ours."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chargers.devices.local_list import last_accepted_state, local_list_push_sync
from chargers.models import Charger
from chargers.ocpp.v201_commands import local_list_as_16, local_list_to_201
from tests.bounds import GENEROUS_S
from tests.factories import TokenFactory, TokenGroupFactory

from .conftest import connect201

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_two_shapes_convert_both_ways():
    list16 = {
        "listVersion": 3,
        "updateType": "Differential",
        "localAuthorizationList": [
            {
                "idTag": "AA",
                "idTagInfo": {
                    "status": "Blocked",
                    "expiryDate": "2027-01-01T00:00:00Z",
                    "parentIdTag": "G",
                },
            },
            {"idTag": "BB"},
        ],
    }
    list201 = local_list_to_201(list16)
    assert list201 == {
        "versionNumber": 3,
        "updateType": "Differential",
        "localAuthorizationList": [
            {
                "idToken": {"idToken": "AA", "type": "ISO14443"},
                "idTokenInfo": {
                    "status": "Blocked",
                    "cacheExpiryDateTime": "2027-01-01T00:00:00Z",
                    "groupIdToken": {"idToken": "G", "type": "ISO14443"},
                },
            },
            {"idToken": {"idToken": "BB", "type": "ISO14443"}},
        ],
    }
    assert local_list_as_16(list201) == list16
    # minItems 1: an empty full list is sent without the list.
    assert local_list_to_201(
        {"listVersion": 1, "updateType": "Full", "localAuthorizationList": []}
    ) == {"versionNumber": 1, "updateType": "Full"}


async def test_push_to_a_201_charger_is_full_then_differential(charger, prop):
    group = await sync_to_async(TokenGroupFactory)(organization=prop.organization)
    first = await sync_to_async(TokenFactory)(uid="CARD-1", organization=prop.organization)
    await sync_to_async(first.groups.add)(group)
    await sync_to_async(charger.token_groups.add)(group)
    client = await connect201()
    fresh = await Charger.objects.aget(pk=charger.pk)

    push = asyncio.create_task(sync_to_async(local_list_push_sync)(fresh, source="api"))
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "SendLocalList"
    assert call[3]["versionNumber"] == 1 and call[3]["updateType"] == "Full"
    assert call[3]["localAuthorizationList"] == [
        {
            "idToken": {"idToken": "CARD-1", "type": "ISO14443"},
            "idTokenInfo": {"status": "Accepted"},
        }
    ]
    await client.send([3, call[1], {"status": "Accepted"}])
    await push
    assert await sync_to_async(last_accepted_state)(fresh) == (
        1,
        {"CARD-1": {"status": "Accepted"}},
    )

    second = await sync_to_async(TokenFactory)(uid="CARD-2", organization=prop.organization)
    await sync_to_async(second.groups.add)(group)
    push = asyncio.create_task(sync_to_async(local_list_push_sync)(fresh, source="api"))
    probe = await client.receive(timeout=GENEROUS_S)
    assert probe[2] == "GetLocalListVersion" and probe[3] == {}
    await client.send([3, probe[1], {"versionNumber": 1}])  # D02: the 2.0.1 answer's name
    call = await client.receive(timeout=GENEROUS_S)
    assert call[3]["updateType"] == "Differential" and call[3]["versionNumber"] == 2
    assert [e["idToken"]["idToken"] for e in call[3]["localAuthorizationList"]] == ["CARD-2"]
    await client.send([3, call[1], {"status": "Accepted"}])
    command = await push
    assert command.result_status == "Accepted"
    await client.close()
