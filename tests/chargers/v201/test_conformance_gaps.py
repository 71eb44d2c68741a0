"""What the 2.0.1 conformance run (tests/conformance/octt.py) found missing: NotifyCustomerInformation
(N09/N10) answered and stored, and ClearVariableMonitoring split by the charger's ItemsPerMessage (N06)."""

import asyncio

import pytest

from chargers.devices import monitoring, remote
from chargers.models import ChargerNotice, Command
from tests.bounds import GENEROUS_S

from .conftest import BOOT, TS, connect201

pytestmark = pytest.mark.django_db(transaction=True)


async def test_customer_information_the_charger_reports_is_acknowledged_and_kept(charger):
    client = await connect201()
    answer = await client.call(
        "NotifyCustomerInformation",
        {
            "data": "Card 100000C01: 3 sessions",
            "seqNo": 0,
            "tbc": True,
            "generatedAt": TS,
            "requestId": 42,
        },
    )
    assert answer[0] == 3 and answer[2] == {}
    notice = await ChargerNotice.objects.aget(charger=charger, action="NotifyCustomerInformation")
    assert notice.payload["data"] == "Card 100000C01: 3 sessions"
    assert notice.summary == "Customer information for request 42, part 0, more to follow"
    await client.close()


@pytest.mark.parametrize(
    ("size", "batches"), [("2", [[1, 2], [3, 4], [5]]), ("", [[1, 2, 3, 4, 5]])]
)
async def test_clearing_monitors_asks_items_per_message_and_sends_that_many_ids_each_time(
    charger, size, batches
):
    client = await connect201()
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    await charger.arefresh_from_db()
    clearing = asyncio.create_task(
        remote.clear_monitors(charger, [1, 2, 3, 3, 4, 5], source="test", timeout=5)
    )
    asked = await client.receive(timeout=GENEROUS_S)
    assert asked[2] == "GetVariables"
    assert asked[3]["getVariableData"] == [
        {
            "component": {"name": "MonitoringCtrlr"},
            "variable": {"name": "ItemsPerMessage", "instance": "ClearVariableMonitoring"},
        }
    ]
    result = (
        {"attributeStatus": "Accepted", "attributeValue": size}
        if size
        else {"attributeStatus": "UnknownVariable"}
    )
    await client.send(
        [3, asked[1], {"getVariableResult": [{**result, **asked[3]["getVariableData"][0]}]}]
    )
    sent = []
    for _ in batches:
        call = await client.receive(timeout=GENEROUS_S)
        assert call[2] == "ClearVariableMonitoring"
        sent.append(call[3]["id"])
        await client.send(
            [
                3,
                call[1],
                {"clearMonitoringResult": [{"id": i, "status": "Accepted"} for i in call[3]["id"]]},
            ]
        )
    assert sent == batches
    commands = await clearing
    assert [c.action for c in commands] == ["ClearVariableMonitoring"] * len(batches)
    assert await Command.objects.filter(
        charger=charger, action="ClearVariableMonitoring"
    ).acount() == len(batches)
    await client.close()


def test_batches_keep_order_and_drop_duplicates():
    assert monitoring.chunks([3, 1, 3, 2], 2) == [[3, 1], [2]]
    assert monitoring.chunks([], 3) == []
    assert monitoring.clear_batch_size("0") is None and monitoring.clear_batch_size("x") is None
    assert monitoring.clear_batch_size(" 4 ") == 4


@pytest.mark.parametrize("status", ["Accepted", "Rejected"])
async def test_a_new_password_goes_out_as_basic_auth_password_and_is_adopted_only_when_accepted(
    charger, status
):
    from chargers.devices import remote
    from chargers.models import DeviceVariable, OcppMessage

    charger.set_ocpp_password("old-password-0123456789")
    await charger.asave(update_fields=["ocpp_password_hash", "ocpp_password_set_at"])
    client = await connect201(password="old-password-0123456789")
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    await charger.arefresh_from_db()
    pushing = asyncio.create_task(remote.authorization_key_push(charger, source="test", timeout=5))
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "SetVariables"
    [item] = call[3]["setVariableData"]
    assert (item["component"], item["variable"]) == (
        {"name": "SecurityCtrlr"},
        {"name": "BasicAuthPassword"},
    )
    new_password = item["attributeValue"]
    assert len(new_password) == 40
    await client.send(
        [
            3,
            call[1],
            {
                "setVariableResult": [
                    {
                        "component": item["component"],
                        "variable": item["variable"],
                        "attributeStatus": status,
                    }
                ]
            },
        ]
    )
    command = await pushing
    await charger.arefresh_from_db()
    assert charger.check_ocpp_password(new_password) is (status == "Accepted")
    assert charger.check_ocpp_password("old-password-0123456789") is (status != "Accepted")
    # The password is in no stored row: command, message log, device model.
    assert new_password not in str(command.payload)
    logged = []
    for _ in range(50):  # the message log is written in batches
        logged = [
            m async for m in OcppMessage.objects.filter(charger=charger, action="SetVariables")
        ]
        if logged:
            break
        await asyncio.sleep(0.1)
    assert logged and all(new_password not in f"{m.payload} {m.raw}" for m in logged)
    assert not await DeviceVariable.objects.filter(value=new_password).aexists()
    await client.close()


async def test_a_signed_charging_station_certificate_says_its_type(charger, settings, tmp_path):
    """A02/A03 (TC_A_11/A_14): the CertificateSigned after a 2.0.1 SignCertificate names its type."""
    from tests.chargers.security_helpers import csr_for

    settings.OCPP_CA_DIR = str(tmp_path / "ca")
    client = await connect201()
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    csr, _ = csr_for("CP-TEST-1")
    answer = await client.result(
        "SignCertificate", {"csr": csr, "certificateType": "ChargingStationCertificate"}
    )
    assert answer == {"status": "Accepted"}
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "CertificateSigned"
    assert call[3]["certificateType"] == "ChargingStationCertificate"
    assert "BEGIN CERTIFICATE" in call[3]["certificateChain"]
    await client.send([3, call[1], {"status": "Accepted"}])
    await client.close()


async def test_the_api_clears_monitors_in_batches_the_charger_accepts(charger, host):
    from asgiref.sync import sync_to_async
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(host)
    client = await connect201()
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    request = asyncio.create_task(
        sync_to_async(api.post)(
            "/api/v1/chargers/CP-TEST-1/monitors/clear/", {"ids": [7, 8, 9]}, format="json"
        )
    )
    asked = await client.receive(timeout=GENEROUS_S)
    assert asked[2] == "GetVariables"
    await client.send(
        [
            3,
            asked[1],
            {
                "getVariableResult": [
                    {
                        "attributeStatus": "Accepted",
                        "attributeValue": "2",
                        **asked[3]["getVariableData"][0],
                    }
                ]
            },
        ]
    )
    for expected in ([7, 8], [9]):
        call = await client.receive(timeout=GENEROUS_S)
        assert call[2] == "ClearVariableMonitoring" and call[3]["id"] == expected
        await client.send(
            [
                3,
                call[1],
                {"clearMonitoringResult": [{"id": i, "status": "Accepted"} for i in expected]},
            ]
        )
    response = await request
    assert response.status_code == 200
    assert [r["ids"] for r in response.json()["requests"]] == [[7, 8], [9]]
    await client.close()


@pytest.mark.parametrize(("answer", "pending"), [("Accepted", 2), ("Rejected", None)])
async def test_an_accepted_network_profile_with_a_higher_security_profile_makes_the_upgrade_pending(
    charger, answer, pending
):
    """A05 (TC_A_19): as 1.6's ChangeConfiguration SecurityProfile; the handshake adopts it once the
    charger connects with it and refuses anything less from then on."""
    from chargers.devices import commands

    client = await connect201()
    assert (await client.result("BootNotification", BOOT))["status"] == "Accepted"
    await charger.arefresh_from_db()
    assert charger.security_profile < 2
    profile = {
        "configurationSlot": 1,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": "wss://csms.example.com/ocpp",
            "messageTimeout": 30,
            "securityProfile": 2,
            "ocppInterface": "Wired0",
        },
    }
    sending = asyncio.create_task(
        commands.send_command(charger, "SetNetworkProfile", profile, source="test", timeout=5)
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "SetNetworkProfile"
    await client.send([3, call[1], {"status": answer}])
    await sending
    await charger.arefresh_from_db()
    assert charger.security_profile_pending == pending
    await client.close()
