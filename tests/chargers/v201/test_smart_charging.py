"""Smart charging (K01-K17) and monitoring (N02-N07) with a 2.0.1 charger: profiles checked
against the spec's rules before sending, what the charger holds kept from its answers and
reports, limit/EV/monitoring notifications stored."""

import asyncio
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from chargers.models import ChargerNotice, ChargingProfile, Command, Connector, VariableMonitor
from chargers.ocpp import v201_smart as rules
from chargers.ocpp.protocol import OcppError
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


def _profile(profile_id=1, purpose="ChargingStationMaxProfile", stack=0, kind="Absolute", **extra):
    schedule = {
        "id": 1,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
    }
    if kind != "Relative":
        schedule["startSchedule"] = "2026-11-20T10:00:00Z"
    return {
        "id": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": [schedule],
        **extra,
    }


def _check(evse_id, profile, installed=(), transactions=None):
    rules.check_profile(
        evse_id,
        profile,
        evse_ids=[1, 2],
        active_transactions=transactions or {},
        installed=installed,
    )


@pytest.mark.parametrize(
    ("evse_id", "profile", "rule"),
    [
        (1, _profile(purpose="TxProfile"), "K01.FR.03"),
        (1, _profile(purpose="TxProfile", transactionId="T-9"), "K01.FR.09"),
        (0, _profile(purpose="TxProfile", transactionId="T-1"), "K01.FR.16"),
        (0, _profile(purpose="ChargingStationExternalConstraints"), "K01.FR.22"),
        (0, _profile(kind="Relative"), "K01.FR.38"),
        (3, _profile(purpose="TxDefaultProfile"), "K01.FR.28"),
        (
            0,
            {
                **_profile(),
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1}],
                    }
                ],
            },
            "K01.FR.40",
        ),
        (
            1,
            _profile(purpose="TxDefaultProfile", kind="Relative")
            | {
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "A",
                        "startSchedule": "2026-11-20T10:00:00Z",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1}],
                    }
                ]
            },
            "K01.FR.41",
        ),
        (
            0,
            {
                **_profile(),
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "A",
                        "startSchedule": "2026-11-20T10:00:00Z",
                        "chargingSchedulePeriod": [{"startPeriod": 60, "limit": 1}],
                    }
                ],
            },
            "K01.FR.31",
        ),
        (
            0,
            {
                **_profile(),
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "A",
                        "startSchedule": "2026-11-20T10:00:00Z",
                        "chargingSchedulePeriod": [
                            {"startPeriod": 0, "limit": 1},
                            {"startPeriod": 0, "limit": 2},
                        ],
                    }
                ],
            },
            "K01.FR.35",
        ),
    ],
)
def test_profiles_the_csms_may_not_send_are_refused_with_the_rule(evse_id, profile, rule):
    with pytest.raises(OcppError) as refused:
        _check(evse_id, profile, transactions={"T-1": 1})
    assert rule in refused.value.description


def test_stack_levels_may_not_collide_in_overlapping_periods():
    held = [
        rules.Installed(
            profile_id=1,
            evse_id=0,
            stack_level=0,
            purpose="TxDefaultProfile",
            valid_to=datetime(2026, 12, 1, tzinfo=UTC),
        )
    ]
    with pytest.raises(OcppError, match="K01.FR.06"):
        _check(1, _profile(2, "TxDefaultProfile"), held)  # EVSE 1 against one on EVSE 0 (K01.FR.53)
    _check(
        1, _profile(2, "TxDefaultProfile", validFrom="2026-12-01T00:00:00Z"), held
    )  # after it ends
    _check(1, _profile(2, "TxDefaultProfile", stack=1), held)
    _check(1, _profile(1, "TxDefaultProfile"), held)  # the same id replaces it (K01.FR.05)
    tx_held = [
        rules.Installed(
            profile_id=5, evse_id=1, stack_level=0, purpose="TxProfile", transaction_id="T-1"
        )
    ]
    with pytest.raises(OcppError, match="K01.FR.39"):
        _check(1, _profile(6, "TxProfile", transactionId="T-1"), tx_held, {"T-1": 1})
    _check(1, _profile(6, "TxProfile", transactionId="T-1", stack=1), tx_held, {"T-1": 1})


@pytest.fixture
def api(host):
    client = APIClient()
    client.force_authenticate(host)
    return client


async def command(api, client, action: str, payload: dict, answer: dict | None):
    request = asyncio.create_task(
        sync_to_async(api.post)(
            f"/api/v1/chargers/CP-TEST-1/commands/{action}/", payload, format="json"
        )
    )
    call = None
    if answer is not None:
        call = await client.receive(timeout=GENEROUS_S)
        await client.send([3, call[1], answer])
    return call, await request


@pytest.mark.django_db(transaction=True)
async def test_profiles_set_cleared_and_reported_are_kept_per_charger(charger, token, api):
    await Connector.objects.acreate(charger=charger, connector_id=1)
    client = await connect201()
    _, refused = await command(
        api,
        client,
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": _profile(9, "TxProfile", transactionId="NOPE")},
        None,
    )
    assert refused.status_code == 400 and "K01.FR.09" in refused.json()["detail"]
    assert not await Command.objects.filter(action="SetChargingProfile").aexists()

    call, response = await command(
        api,
        client,
        "SetChargingProfile",
        {"evseId": 0, "chargingProfile": _profile(1)},
        {"status": "Accepted"},
    )
    assert response.status_code == 200 and call[3]["chargingProfile"]["id"] == 1
    held = await ChargingProfile.objects.aget(charger=charger, profile_id=1)
    assert (
        held.status == "installed"
        and held.purpose == "ChargingStationMaxProfile"
        and held.evse_id == 0
    )
    # Another profile at the same stack level and purpose would overlap it.
    _, refused = await command(
        api, client, "SetChargingProfile", {"evseId": 0, "chargingProfile": _profile(2)}, None
    )
    assert refused.status_code == 400 and "K01.FR.06" in refused.json()["detail"]

    # A TxProfile for a running transaction goes through.
    await client.result(
        "TransactionEvent", tx_event("Started", 0, "TX-S", id_token="04A1B2C3", wh=0)
    )
    call, response = await command(
        api,
        client,
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": _profile(3, "TxProfile", transactionId="TX-S")},
        {"status": "Accepted"},
    )
    assert response.status_code == 200
    assert (await ChargingProfile.objects.aget(profile_id=3)).transaction_id == "TX-S"

    call, response = await command(
        api,
        client,
        "ClearChargingProfile",
        {"chargingProfileCriteria": {"chargingProfilePurpose": "ChargingStationMaxProfile"}},
        {"status": "Accepted"},
    )
    assert (await ChargingProfile.objects.aget(profile_id=1)).status == "cleared"
    assert (await ChargingProfile.objects.aget(profile_id=3)).status == "installed"

    call, response = await command(
        api,
        client,
        "GetCompositeSchedule",
        {"duration": 3600, "evseId": 1},
        {
            "status": "Accepted",
            "schedule": {
                "evseId": 1,
                "duration": 3600,
                "scheduleStart": "2026-11-20T10:00:00Z",
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
            },
        },
    )
    assert (
        response.status_code == 200 and response.json()["response"]["schedule"]["duration"] == 3600
    )

    # K09: what the charger reports it holds, including an EMS's profile.
    external = _profile(40, "ChargingStationExternalConstraints")
    assert (
        await client.result(
            "ReportChargingProfiles",
            {
                "requestId": 7,
                "chargingLimitSource": "EMS",
                "evseId": 0,
                "chargingProfile": [external],
            },
        )
        == {}
    )
    reported = await ChargingProfile.objects.aget(profile_id=40)
    assert reported.source == "EMS" and reported.status == "installed"
    # K12/K13: limits set and cleared by the EMS.
    assert (
        await client.result(
            "NotifyChargingLimit",
            {"chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": True}, "evseId": 0},
        )
        == {}
    )
    assert (
        await client.result("ClearedChargingLimit", {"chargingLimitSource": "EMS", "evseId": 0})
        == {}
    )
    assert (await ChargingProfile.objects.aget(profile_id=40)).status == "cleared"
    notices = [n async for n in ChargerNotice.objects.filter(charger=charger).order_by("id")]
    assert [n.action for n in notices] == ["NotifyChargingLimit", "ClearedChargingLimit"]
    assert notices[0].summary == "Limit set by EMS (grid critical)"
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_ev_needs_and_schedules_are_stored_and_answered(charger):
    client = await connect201()
    answer = await client.result(
        "NotifyEVChargingNeeds",
        {
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
        },
    )
    assert answer["status"] == "Rejected"  # no transaction runs on EVSE 1: no TxProfile to give
    answer = await client.result(
        "NotifyEVChargingSchedule",
        {
            "timeBase": "2026-11-20T10:00:00Z",
            "evseId": 1,
            "chargingSchedule": {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000}],
            },
        },
    )
    assert answer == {"status": "Accepted"}
    needs = await ChargerNotice.objects.aget(action="NotifyEVChargingNeeds")
    assert needs.evse_id == 1 and "20000 Wh wanted" in needs.summary
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_monitors_set_reported_and_cleared(charger, api):
    client = await connect201()
    data = {
        "value": 80,
        "type": "UpperThreshold",
        "severity": 4,
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Power"},
    }
    _, response = await command(
        api,
        client,
        "SetVariableMonitoring",
        {"setMonitoringData": [data]},
        {
            "setMonitoringResult": [
                {
                    "id": 11,
                    "status": "Accepted",
                    "type": "UpperThreshold",
                    "severity": 4,
                    "component": data["component"],
                    "variable": data["variable"],
                }
            ]
        },
    )
    assert response.status_code == 200
    monitor = await VariableMonitor.objects.aget(charger=charger, monitor_id=11)
    assert (monitor.component, monitor.evse_id, monitor.variable, monitor.value) == (
        "EVSE",
        1,
        "Power",
        80.0,
    )
    assert (
        await client.result(
            "NotifyMonitoringReport",
            {
                "requestId": 3,
                "seqNo": 0,
                "generatedAt": "2026-11-20T10:00:00Z",
                "monitor": [
                    {
                        "component": {"name": "ChargingStation"},
                        "variable": {"name": "Temperature"},
                        "variableMonitoring": [
                            {
                                "id": 2,
                                "transaction": False,
                                "value": 70,
                                "type": "UpperThreshold",
                                "severity": 2,
                            }
                        ],
                    }
                ],
            },
        )
        == {}
    )
    assert await VariableMonitor.objects.filter(charger=charger).acount() == 2
    await command(
        api,
        client,
        "ClearVariableMonitoring",
        {"id": [11, 99]},
        {
            "clearMonitoringResult": [
                {"id": 11, "status": "Accepted"},
                {"id": 99, "status": "NotFound"},
            ]
        },
    )
    assert [
        m
        async for m in VariableMonitor.objects.filter(charger=charger).values_list(
            "monitor_id", flat=True
        )
    ] == [2]
    for action, payload in (
        ("SetMonitoringLevel", {"severity": 5}),
        ("SetMonitoringBase", {"monitoringBase": "All"}),
    ):
        call, response = await command(api, client, action, payload, {"status": "Accepted"})
        assert call[2] == action and response.json()["status"] == "Accepted"
    await client.close()


def test_a_limit_for_a_while_is_a_profile_valid_for_that_while():
    profile = rules.simple_limit_profile(
        profile_id=7,
        purpose="TxDefaultProfile",
        stack_level=2,
        unit="W",
        limit=7400,
        start=NOW,
        duration_s=3600,
    )
    assert (profile["validFrom"], profile["validTo"]) == (
        "2026-11-20T10:00:00.000Z",
        "2026-11-20T11:00:00.000Z",
    )
    assert profile["chargingSchedule"][0]["duration"] == 3600
    _check(1, profile)  # what the portal sends keeps the rules it checks
    assert "validTo" not in rules.simple_limit_profile(
        profile_id=7, purpose="TxDefaultProfile", stack_level=2, unit="W", limit=7400, start=NOW
    )
