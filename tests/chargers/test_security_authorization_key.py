"""A new AuthorizationKey sent with ChangeConfiguration replaces the password when, and only
when, the charger answers Accepted; the key is never stored in clear (OCPP-J 1.6 §6, A01)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from chargers.connections import handshake
from chargers.models import AuthorizationKeyChange, Charger, Command
from tests.bounds import GENEROUS_S
from tests.chargers.security_helpers import PASSWORD, scope
from tests.factories import ChargerFactory, MembershipFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

NEW_KEY = "00112233445566778899aabbccddeeff0a0b0c0d"


async def setup(station_id: str):
    charger = await sync_to_async(ChargerFactory)(
        station_id=station_id, security_profile=1, ocpp_password=PASSWORD
    )
    owner = await sync_to_async(
        lambda: MembershipFactory(organization=charger.property.organization).user
    )()
    api = APIClient()
    api.force_authenticate(owner)
    client = OcppTestClient(station_id, password=PASSWORD)
    assert (await client.connect())[0]
    return charger, api, client


async def send_key(api, client, station_id: str, answer: str):
    request = asyncio.create_task(
        sync_to_async(api.post)(
            f"/api/v1/chargers/{station_id}/commands/ChangeConfiguration/",
            {"key": "AuthorizationKey", "value": NEW_KEY},
            format="json",
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "ChangeConfiguration" and call[3]["value"] == NEW_KEY
    await client.send([3, call[1], {"status": answer}])
    return await request


async def connects(station_id: str, password) -> bool:
    try:
        await handshake.admit(
            scope(station_id, address="198.51.100.3", password=password), station_id
        )
    except handshake.Refused:
        return False
    return True


async def test_accepted_key_replaces_the_password():
    charger, api, client = await setup("AK-1")
    response = await send_key(api, client, "AK-1", "Accepted")
    assert response.status_code == 200 and response.json()["status"] == "Accepted"
    await client.close()
    assert await connects("AK-1", bytes.fromhex(NEW_KEY))  # the raw key, as OCPP-J sends it
    assert await connects("AK-1", NEW_KEY)  # or its hex text
    assert not await connects("AK-1", PASSWORD)
    change = await AuthorizationKeyChange.objects.aget(charger=charger)
    assert change.status == "adopted" and NEW_KEY not in change.password_hash


@pytest.mark.parametrize("answer", ["Rejected", "NotSupported"])
async def test_a_key_the_charger_did_not_accept_changes_nothing(answer):
    charger, api, client = await setup(f"AK-{answer}")
    await send_key(api, client, f"AK-{answer}", answer)
    await client.close()
    assert await connects(f"AK-{answer}", PASSWORD)
    assert not await connects(f"AK-{answer}", NEW_KEY)
    assert (await AuthorizationKeyChange.objects.aget(charger=charger)).status == "kept"


async def test_the_key_is_never_stored_in_clear():
    charger, api, client = await setup("AK-CLEAR")
    await send_key(api, client, "AK-CLEAR", "Accepted")
    await client.close()
    command = await Command.objects.aget(charger=charger, action="ChangeConfiguration")
    assert NEW_KEY not in json.dumps(command.payload) and NEW_KEY not in json.dumps(
        command.response
    )
    charger = await Charger.objects.aget(pk=charger.pk)
    assert NEW_KEY not in charger.ocpp_password_hash


async def test_a_malformed_key_is_refused_before_sending():
    charger, api, client = await setup("AK-BAD")
    response = await sync_to_async(api.post)(
        "/api/v1/chargers/AK-BAD/commands/ChangeConfiguration/",
        {"key": "AuthorizationKey", "value": "short"},
        format="json",
    )
    assert response.status_code == 400
    assert not await Command.objects.filter(charger=charger).aexists()
    await client.close()


async def test_rotate_over_ocpp_pushes_a_key_nobody_sees():
    charger, api, client = await setup("AK-PUSH")
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/AK-PUSH/rotate-password/", {"over_ocpp": True}, format="json"
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "ChangeConfiguration" and call[3]["key"] == "AuthorizationKey"
    key = call[3]["value"]
    assert len(key) == 40
    await client.send([3, call[1], {"status": "Accepted"}])
    response = await request
    assert response.json() == {"status": "Accepted", "adopted": True}
    await client.close()
    assert await connects("AK-PUSH", bytes.fromhex(key))
    assert not await connects("AK-PUSH", PASSWORD)


async def test_an_accepted_security_profile_upgrade_waits_for_the_charger():
    charger, api, client = await setup("AK-SP")
    lower = await sync_to_async(api.post)(
        "/api/v1/chargers/AK-SP/commands/ChangeConfiguration/",
        {"key": "SecurityProfile", "value": "1"},
        format="json",
    )
    assert lower.status_code == 400, "A00.FR.005: never lower or equal over OCPP"
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/AK-SP/commands/ChangeConfiguration/",
            {"key": "SecurityProfile", "value": "2"},
            format="json",
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    await client.send([3, call[1], {"status": "Accepted"}])
    await request
    await client.close()
    charger = await Charger.objects.aget(pk=charger.pk)
    assert (charger.security_profile, charger.security_profile_pending) == (1, 2)


async def test_a_key_whose_answer_was_lost_works_once_the_charger_uses_it():
    charger, api, client = await setup("AK-LOST")
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/AK-LOST/commands/ChangeConfiguration/",
            {"key": "AuthorizationKey", "value": NEW_KEY},
            format="json",
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "ChangeConfiguration"
    await client.close()  # it switched keys and dropped the line before its answer got out
    await request
    assert (await AuthorizationKeyChange.objects.aget(charger=charger)).status == "noanswer"
    assert await connects("AK-LOST", PASSWORD), (
        "it may not have switched: the old password still works"
    )
    assert await connects("AK-LOST", bytes.fromhex(NEW_KEY)), "it did switch: the new key works"
    assert (await AuthorizationKeyChange.objects.aget(charger=charger)).status == "adopted"
    assert not await connects("AK-LOST", PASSWORD), "from then on only the new key"


async def test_a_key_a_charger_reports_back_is_not_stored():
    charger, api, client = await setup("AK-ECHO")
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/AK-ECHO/commands/GetConfiguration/", {}, format="json"
        )
    )
    call = await client.receive(timeout=GENEROUS_S)
    await client.send(
        [
            3,
            call[1],
            {
                "configurationKey": [
                    {"key": "AuthorizationKey", "readonly": False, "value": NEW_KEY}
                ]
            },
        ]
    )
    response = await request
    await client.close()
    assert NEW_KEY not in json.dumps(response.json())
    command = await Command.objects.aget(charger=charger, action="GetConfiguration")
    assert NEW_KEY not in json.dumps(command.response)
