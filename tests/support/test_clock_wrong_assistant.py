"""A host asks the Help panel about a charger whose clock is not set: the answer says the clock
was wrong, what we did about it (its times replaced by when its messages reached us, so its
sessions are billed right), how to set it, and where the Logs mark those messages. Before, the
panel said nothing of it and answered about cards. A guest asking about the same charger is not
told, nor is a host of another organization (the clock is its own host's to fix)."""

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from chargers.plumbing import background
from chargers.state import quirks as quirks_state
from tests.bounds import GENEROUS_S
from tests.factories import MembershipFactory
from tests.ocpp_client import OcppTestClient

URL = "/api/v1/support/assistant/"
QUESTION = "Charger CP-TEST-1 shows strange times in its sessions, what is wrong with it?"


def _ask(client: APIClient) -> list[str]:
    answer = client.post(URL, {"message": QUESTION, "context": {}}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()["facts"]


@pytest.mark.django_db(transaction=True)
async def test_the_help_panel_tells_the_host_the_chargers_clock_is_wrong(charger, host):
    quirks_state.forget()
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    await client.result(
        "StatusNotification",
        {
            "connectorId": 1,
            "status": "Available",
            "errorCode": "NoError",
            "timestamp": "1970-01-01T00:00:42Z",
        },
    )
    await background.drain(GENEROUS_S)
    await client.close()
    quirks_state.forget()

    host_client = APIClient()
    host_client.force_authenticate(host)
    facts = await sync_to_async(_ask)(host_client)
    clock = [fact for fact in facts if "clock is wrong" in fact]
    assert len(clock) == 1, facts
    assert (
        "s ago, '1970-01-01T00:00:42Z', is before 2015: the charger's clock is not set" in clock[0]
    )
    assert "billed right" in clock[0] and "BootNotification and Heartbeat" in clock[0]
    assert '"charger clock wrong" under Chargers > View > Logs' in clock[0]

    guest_facts = await sync_to_async(_ask)(APIClient())
    assert not any("clock" in fact for fact in guest_facts)
    stranger = APIClient()  # a host of another organization sees the guest page's facts only
    stranger.force_authenticate(await sync_to_async(lambda: MembershipFactory().user)())
    assert not any("clock" in fact for fact in await sync_to_async(_ask)(stranger))
