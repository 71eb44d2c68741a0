"""Changing a local token group pushes the charger's local list: full first, then differential."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from authorization.services import token_group_add_uid
from chargers.models import Command
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, TokenGroupFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def answer(client, action, response):
    call = await client.receive(timeout=GENEROUS_S)
    assert call[0] == 2 and call[2] == action, call
    await client.send([3, call[1], response])
    return call[3]


async def test_group_change_pushes_full_then_differential_list(db):
    charger = await sync_to_async(ChargerFactory)(station_id="LL-1")
    group = await sync_to_async(TokenGroupFactory)(
        organization=await sync_to_async(lambda: charger.property.organization)()
    )
    await sync_to_async(charger.token_groups.add)(group)
    client = OcppTestClient("LL-1")
    assert (await client.connect())[0]

    first = asyncio.create_task(sync_to_async(token_group_add_uid)(group=group, uid="04AA0001"))
    payload = await answer(client, "SendLocalList", {"status": "Accepted"})
    await first
    assert payload["updateType"] == "Full" and payload["listVersion"] == 1
    assert payload["localAuthorizationList"] == [
        {"idTag": "04AA0001", "idTagInfo": {"status": "Accepted"}}
    ]

    second = asyncio.create_task(sync_to_async(token_group_add_uid)(group=group, uid="04AA0002"))
    await answer(client, "GetLocalListVersion", {"listVersion": 1})
    payload = await answer(client, "SendLocalList", {"status": "Accepted"})
    await second
    assert payload["updateType"] == "Differential" and payload["listVersion"] == 2
    assert payload["localAuthorizationList"] == [
        {"idTag": "04AA0002", "idTagInfo": {"status": "Accepted"}}
    ]

    statuses = [
        c
        async for c in Command.objects.filter(charger=charger)
        .order_by("pk")
        .values_list("action", "status")
    ]
    assert statuses == [
        ("SendLocalList", "answered"),
        ("GetLocalListVersion", "answered"),
        ("SendLocalList", "answered"),
    ]
    await client.close()


async def test_charger_that_lost_its_list_gets_a_full_one(db):
    charger = await sync_to_async(ChargerFactory)(station_id="LL-2")
    group = await sync_to_async(TokenGroupFactory)(
        organization=await sync_to_async(lambda: charger.property.organization)()
    )
    await sync_to_async(charger.token_groups.add)(group)
    client = OcppTestClient("LL-2")
    assert (await client.connect())[0]
    task = asyncio.create_task(sync_to_async(token_group_add_uid)(group=group, uid="04AA0003"))
    await answer(client, "SendLocalList", {"status": "Accepted"})
    await task
    task = asyncio.create_task(sync_to_async(token_group_add_uid)(group=group, uid="04AA0004"))
    await answer(client, "GetLocalListVersion", {"listVersion": 0})
    payload = await answer(client, "SendLocalList", {"status": "Accepted"})
    await task
    assert payload["updateType"] == "Full" and len(payload["localAuthorizationList"]) == 2
    await client.close()
