"""A start answered from the outage journal gets its authorization decision when it is replayed
(docs/ocpp.md, "During a database outage"): support sees why the card could charge."""

import pytest
from asgiref.sync import sync_to_async

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, OcppDeadLetter
from chargers.plumbing.journal import read_entries
from chargers.sessions import replay, services
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

TS = "2026-11-20T10:00:00Z"


async def _replay_twice(outage):
    entries, _ = read_entries(outage._path)
    for _ in range(2):  # an interrupted replay run again applies each entry once
        for entry in entries:
            await sync_to_async(replay.journal_apply)(outage._path.name, entry)


async def test_a_journaled_start_is_decided_when_replayed(charger, token, outage):
    token.blocked = True
    await token.asave()
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    outage.engage("test outage")
    answer = await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 100,
            "timestamp": TS,
        },
    )
    assert answer["idTagInfo"] == {"status": "Accepted"}  # the card could not be checked
    await client.close()
    assert not await AuthorizationDecision.objects.aexists()

    await _replay_twice(outage)
    session = await ChargingSession.objects.aget(charger=charger)
    assert session.id_tag_status == "Accepted"  # what the charger was told
    decision = await AuthorizationDecision.objects.aget()  # one, though replayed twice
    assert (decision.uid, decision.context, decision.status) == (
        "04A1B2C3",
        "start_transaction",
        "Blocked",
    )
    assert (
        decision.token_id == token.pk
        and decision.station_id == "CP-TEST-1"
        and decision.connector_id == 1
    )
    assert decision.message.endswith(services.REPLAYED_START_NOTE)
    assert decision.ocpp_unique_id  # pairs with the StartTransaction in the Logs


async def test_a_start_that_cannot_be_decided_at_replay_is_stored_all_the_same(
    charger, token, outage, monkeypatch
):
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    outage.engage("test outage")
    await client.result(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 100, "timestamp": TS},
    )
    await client.close()

    def engine_fails(**kwargs):
        raise ValueError("a bug in the decision engine")

    monkeypatch.setattr("authorization.services.decide_cached", engine_fails)
    await _replay_twice(outage)
    assert (
        await ChargingSession.objects.aget(charger=charger)
    ).meter_start_wh == 100  # billing data kept
    assert not await AuthorizationDecision.objects.aexists()
    assert not await OcppDeadLetter.objects.aexists()
