"""K15-K17 (issue 52 item 5): a car's ISO 15118 charging needs are answered Accepted and followed
by a TxProfile for its transaction within the site's allowance; the car's own schedule is checked
against what the charger accepted, and one beyond it is Rejected with the profile sent again."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from chargers.models import ChargingSession
from power.models import ConnectorAllocation
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

AC_NEEDS = {
    "evseId": 1,
    "chargingNeeds": {
        "requestedEnergyTransfer": "AC_three_phase",
        "acChargingParameters": {
            "energyAmount": 20000,
            "evMinCurrent": 6,
            "evMaxCurrent": 32,
            "evMaxVoltage": 400,
        },
    },
}


def _schedule(limit: float, unit: str = "A") -> dict:
    return {
        "timeBase": "2026-11-20T10:00:00Z",
        "evseId": 1,
        "chargingSchedule": {
            "id": 1,
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
    }


async def _started(client) -> ChargingSession:
    await client.result(
        "StatusNotification",
        {
            "timestamp": "2026-11-20T10:00:00Z",
            "connectorStatus": "Occupied",
            "evseId": 1,
            "connectorId": 1,
        },
    )
    await client.result("TransactionEvent", tx_event("Started", 0, id_token="04A1B2C3", wh=0))
    return await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")


async def _profile(client) -> dict:
    call = await client.receive(timeout=GENEROUS_S)
    assert call[0] == 2 and call[2] == "SetChargingProfile", call
    await client.send([3, call[1], {"status": "Accepted"}])
    return call[3]


async def test_the_cars_needs_get_a_tx_profile_within_the_sites_allowance(charger, token, prop):
    client = await connect201()
    session = await _started(client)
    await sync_to_async(ConnectorAllocation.objects.create)(
        charger=charger, connector_id=1, property=prop, session=session, limit_a=Decimal("16.0")
    )
    assert await client.result("NotifyEVChargingNeeds", AC_NEEDS) == {"status": "Accepted"}
    sent = await _profile(client)
    profile = sent["chargingProfile"]
    assert sent["evseId"] == 1 and profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["transactionId"] == "TX-1" and len(profile["chargingSchedule"]) <= 3
    schedule = profile["chargingSchedule"][0]
    # The car could take 32 A; the site gives this session 16 A.
    assert schedule["chargingRateUnit"] == "A"
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]

    # K15.FR.11: within what we sent.
    assert await client.result("NotifyEVChargingSchedule", _schedule(16)) == {"status": "Accepted"}
    # K15.FR.12/13: beyond it (11 kW at three phases is ~16 A, 20 kW is not): Rejected, renegotiated.
    answer = await client.result("NotifyEVChargingSchedule", _schedule(20000, "W"))
    assert answer["status"] == "Rejected"
    again = await _profile(client)
    assert again == sent
    await client.close()


async def test_without_a_shared_budget_the_car_gets_its_own_maximum(charger, token, host):
    from django.test import AsyncClient
    from django.urls import reverse

    client = await connect201()
    session = await _started(client)
    assert await client.result("NotifyEVChargingNeeds", AC_NEEDS) == {"status": "Accepted"}
    schedule = (await _profile(client))["chargingProfile"]["chargingSchedule"][0]
    assert schedule["chargingSchedulePeriod"][0]["limit"] == 32.0
    await client.close()
    web = AsyncClient()
    await web.aforce_login(host)
    page = (await web.get(reverse("chargers:session-detail", args=[session.pk]))).content.decode()
    assert "The car's charging needs" in page and "20000 Wh wanted" in page


async def test_a_dc_car_is_given_watts(charger, token, prop):
    client = await connect201()
    session = await _started(client)
    await sync_to_async(ConnectorAllocation.objects.create)(
        charger=charger, connector_id=1, property=prop, session=session, limit_a=Decimal("100.0")
    )
    needs = {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "DC",
            "dcChargingParameters": {
                "evMaxCurrent": 200,
                "evMaxVoltage": 800,
                "evMaxPower": 150000,
            },
        },
    }
    assert await client.result("NotifyEVChargingNeeds", needs) == {"status": "Accepted"}
    schedule = (await _profile(client))["chargingProfile"]["chargingSchedule"][0]
    # 100 A per phase at 230 V, three phases: 69 kW of the car's 150 kW.
    assert schedule["chargingRateUnit"] == "W"
    assert schedule["chargingSchedulePeriod"][0]["limit"] == 69000.0
    await client.close()


async def test_K15_FR_12_a_schedule_told_before_our_profile_is_recorded_is_checked_against_it(
    charger, token, prop
):
    """TC_K_55: the charger accepts our TxProfile and tells the car's schedule at once; the
    Command row of our profile may still be pending then (its answer is recorded by the CALL's
    own task). Here the schedule even arrives before the answer: still checked against that
    profile, so one beyond it is Rejected and renegotiated (K15.FR.12/13), never Accepted for
    want of a recorded answer."""
    client = await connect201()
    session = await _started(client)
    await sync_to_async(ConnectorAllocation.objects.create)(
        charger=charger, connector_id=1, property=prop, session=session, limit_a=Decimal("16.0")
    )
    assert await client.result("NotifyEVChargingNeeds", AC_NEEDS) == {"status": "Accepted"}
    ours = await client.receive(timeout=GENEROUS_S)
    assert ours[2] == "SetChargingProfile"
    answer = await client.result("NotifyEVChargingSchedule", _schedule(32))  # ours says 16 A
    assert answer["status"] == "Rejected"
    await client.send([3, ours[1], {"status": "Accepted"}])
    again = await _profile(client)  # the renegotiation, once our one outstanding CALL is done
    assert again == ours[3]
    # Within it: Accepted.
    assert await client.result("NotifyEVChargingSchedule", _schedule(16)) == {"status": "Accepted"}
    await client.close()


def test_K15_needs_without_a_maximum_and_no_budget_are_not_limited_to_zero():
    """Every charging-needs parameter is optional: a car that names no maximum at a site that
    shares no budget is limited by nothing, so its profile carries the most a connector can
    take, never 0 (which stops the car); a budget or the car's own maximum still bound it."""
    from chargers.ocpp.v201_ev_needs import NO_LIMIT_AC_A, NO_LIMIT_DC_W, schedule_limit

    ac = {"requestedEnergyTransfer": "AC_three_phase"}
    assert schedule_limit(ac, None, 3) == ("A", NO_LIMIT_AC_A)
    assert schedule_limit(ac, Decimal("16"), 3) == ("A", Decimal("16.0"))
    assert schedule_limit(ac, Decimal("0"), 3) == ("A", Decimal("0.0"))  # the site has none now
    dc = {"requestedEnergyTransfer": "DC", "dcChargingParameters": {"evMaxVoltage": 800}}
    assert schedule_limit(dc, None, 3) == ("W", NO_LIMIT_DC_W)
    assert schedule_limit(dc, Decimal("100"), 3) == ("W", Decimal("69000"))


async def test_K15_FR_12_tc_k_55_a_car_without_parameters_beyond_its_profile_is_rejected(
    charger, token
):
    """TC_K_55's car names no parameters and doubles the limit we send: Rejected (it was 0 A,
    so doubling it stayed within and was Accepted)."""
    client = await connect201()
    await _started(client)
    needs = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"}}
    assert await client.result("NotifyEVChargingNeeds", needs) == {"status": "Accepted"}
    sent = await _profile(client)
    period = sent["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert period["limit"] == 63.0
    answer = await client.result("NotifyEVChargingSchedule", _schedule(period["limit"] * 2))
    assert answer["status"] == "Rejected"
    assert await _profile(client) == sent  # renegotiated
    await client.close()
