"""Configuration baselines against chargers written from the OCPP-J text (Channels'
communicator): a baseline for one model is applied after the boot (the other model is left
alone), a value needing a reboot resets the charger once and never again for that version; a
charger that changes a key drifts, shows it on its Configuration tab, and one click re-applies
it; 2.0.1 SetVariables go in the charger's ItemsPerMessageSetVariables, results in 2.0.1's
words."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from rest_framework.test import APIClient

from chargers.models import Charger, Command
from fleet.baselines import dispatch as baseline_dispatch
from fleet.baselines import services as baseline_services
from fleet.models import Baseline, BaselineApplication
from tests.bounds import GENEROUS_S
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quiet_follow_ups(settings):
    # Calls a charger gets after its boot would interleave with the ones a test reads.
    settings.OCPP_ENERGY_CONFIG_AFTER_BOOT = False
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False


async def until(predicate, what: str) -> None:
    deadline = time.monotonic() + GENEROUS_S
    while not await sync_to_async(predicate)():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Charger16:
    """A 1.6 charger from the text: ChangeConfiguration (NotSupported for an unknown key,
    Rejected for a read-only one, RebootRequired for the keys it applies at boot), GetConfiguration
    and Reset (it answers, goes away and boots again with the same firmware)."""

    subprotocol = "ocpp1.6"

    def __init__(self, station_id: str, model: str, config: dict[str, str], **kwargs: Any):
        self.station_id, self.model, self.config = station_id, model, dict(config)
        self.readonly: set[str] = set(kwargs.get("readonly", ()))
        self.at_boot: set[str] = set(kwargs.get("at_boot", ()))
        self.calls: list[tuple[str, dict]] = []
        self.boots = 0
        self.task: asyncio.Task | None = None

    def boot_payload(self) -> dict:
        return {
            "chargePointVendor": "Acme",
            "chargePointModel": self.model,
            "firmwareVersion": "1.0",
        }

    async def start(self) -> None:
        self.client = OcppTestClient(self.station_id, subprotocols=(self.subprotocol,))
        assert (await self.client.connect())[0]
        answer = await self.client.result("BootNotification", self.boot_payload())
        assert answer["status"] == "Accepted"
        self.boots += 1
        self.task = asyncio.create_task(self._serve())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await self.client.close()

    def actions(self, name: str) -> list[dict]:
        return [payload for action, payload in self.calls if action == name]

    async def _serve(self) -> None:
        while True:
            try:
                message = await self.client.receive(timeout=3600)
            except TimeoutError:
                continue
            assert message[0] == 2, message
            _, unique_id, action, payload = message
            self.calls.append((action, payload))
            answer = self.answer(action, payload)
            if "errorCode" in answer:  # a CALLERROR
                await self.client.send([4, unique_id, answer["errorCode"], "", {}])
                continue
            await self.client.send([3, unique_id, answer])
            if action == "Reset":  # it reboots: a new connection and a boot, nothing changed
                await self.client.close()
                self.client = OcppTestClient(self.station_id, subprotocols=(self.subprotocol,))
                assert (await self.client.connect())[0]
                assert (await self.client.result("BootNotification", self.boot_payload()))[
                    "status"
                ] == "Accepted"
                self.boots += 1

    def answer(self, action: str, payload: dict) -> dict:
        if action == "ChangeConfiguration":
            key = payload["key"]
            if key not in self.config:
                return {"status": "NotSupported"}
            if key in self.readonly:
                return {"status": "Rejected"}
            self.config[key] = payload["value"]
            return {"status": "RebootRequired" if key in self.at_boot else "Accepted"}
        if action == "GetConfiguration":
            keys = payload.get("key") or list(self.config)
            return {
                "configurationKey": [
                    {"key": k, "readonly": k in self.readonly, "value": self.config[k]}
                    for k in keys
                    if k in self.config
                ],
                "unknownKey": [k for k in keys if k not in self.config],
            }
        if action == "Reset":
            return {"status": "Accepted"}
        raise AssertionError(f"unexpected {action}")


class Charger201(Charger16):
    """A 2.0.1 charger from the text: SetVariables / GetVariables over its variables (by
    component and variable name), answering in SetVariableStatusEnumType's words; Reset."""

    subprotocol = "ocpp2.0.1"

    def boot_payload(self) -> dict:
        return {
            "reason": "PowerUp",
            "chargingStation": {
                "vendorName": "Acme",
                "model": self.model,
                "firmwareVersion": "1.0",
            },
        }

    def _status(self, item: dict) -> str:
        component, variable = item["component"]["name"], item["variable"]["name"]
        key = f"{component}.{variable}" + (
            f"[{item['variable']['instance']}]" if item["variable"].get("instance") else ""
        )
        if not any(k.startswith(component + ".") for k in self.config):
            return "UnknownComponent"
        if key not in self.config:
            return "UnknownVariable"
        if item.get("attributeType", "Actual") != "Actual":
            return "NotSupportedAttributeType"
        return key

    def answer(self, action: str, payload: dict) -> dict:
        limit = self.config.get(f"DeviceDataCtrlr.ItemsPerMessage[{action}]")
        items = payload.get("setVariableData") or payload.get("getVariableData") or []
        if limit is not None and len(items) > int(limit):
            # More than it takes in one message: B06.FR.16 lets it refuse the whole request.
            return {"errorCode": "OccurrenceConstraintViolation"}
        if action == "SetVariables":
            results = []
            for item in payload["setVariableData"]:
                found = self._status(item)
                status = found
                if found in self.config:
                    status = "Rejected" if found in self.readonly else "Accepted"
                    if status == "Accepted":
                        self.config[found] = item["attributeValue"]
                        status = "RebootRequired" if found in self.at_boot else "Accepted"
                results.append(
                    {
                        "attributeType": item.get("attributeType", "Actual"),
                        "attributeStatus": status,
                        "component": item["component"],
                        "variable": item["variable"],
                    }
                )
            return {"setVariableResult": results}
        if action == "GetVariables":
            results = []
            for item in payload["getVariableData"]:
                found = self._status(item)
                result = {
                    "attributeStatus": "Accepted" if found in self.config else found,
                    "component": item["component"],
                    "variable": item["variable"],
                }
                if found in self.config:
                    result["attributeValue"] = self.config[found]
                results.append(result)
            return {"getVariableResult": results}
        return super().answer(action, payload)


def organization_with_chargers(*station_ids: str):
    prop = PropertyFactory()
    owner = MembershipFactory(organization=prop.organization).user
    for station_id in station_ids:
        ChargerFactory(station_id=station_id, property=prop)
    return prop.organization, owner


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def sweep() -> dict[str, int]:
    """One pass of the beat task fleet.baselines_apply."""
    return baseline_dispatch.baselines_apply()


BASELINE_16 = [
    {"variable": "HeartbeatInterval", "value": "300"},
    {"variable": "MeterValueSampleInterval", "value": "60"},
    {"variable": "WebSocketPingInterval", "value": "30"},  # taken at the next boot
    {"variable": "VendorSpecificThing", "value": "1"},  # a key they do not know
]
CONFIG_16 = {
    "HeartbeatInterval": "60",
    "MeterValueSampleInterval": "10",
    "WebSocketPingInterval": "0",
    "ConnectorPhaseRotation": "Unknown",
}


async def test_a_16_baseline_applies_at_boot_drifts_and_reapplies_without_a_reboot_loop():
    org, owner = await sync_to_async(organization_with_chargers)("A1-1", "A1-2", "B2-1")
    api = api_for(owner)
    made = await sync_to_async(api.post)(
        "/api/v1/config-baselines/",
        {
            "organization": org.pk,
            "name": "A1 standard",
            "vendor": "Acme",
            "model": "A1",
            "protocol": "1.6",
            "settings": BASELINE_16,
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    baseline_id = made.json()["id"]
    assert made.json()["version"] == 1
    kwargs = {"readonly": ["ConnectorPhaseRotation"], "at_boot": ["WebSocketPingInterval"]}
    chargers = [
        Charger16("A1-1", "A1", CONFIG_16, **kwargs),
        Charger16("A1-2", "A1", CONFIG_16, **kwargs),
        Charger16("B2-1", "B2", CONFIG_16, **kwargs),
    ]
    for charger in chargers:
        await charger.start()
    a1, a2, b2 = chargers
    await until(
        lambda: Charger.objects.filter(model="A1", last_boot_at__isnull=False).count() == 2,
        "the boots",
    )

    # After the boots (never in their answer): each A1 gets the baseline, one key a request,
    # and one Reset for the value that needs a reboot; B2 is another model and gets nothing.
    assert await sync_to_async(sweep)() == {"partial": 2}
    for charger in (a1, a2):
        await until(lambda c=charger: c.boots == 2, "the reboot")
        assert sorted(p["key"] for p in charger.actions("ChangeConfiguration")) == sorted(
            s["variable"] for s in BASELINE_16
        )
        assert charger.actions("Reset") == [{"type": "Soft"}]
    assert b2.calls == []
    application = await BaselineApplication.objects.aget(charger__station_id="A1-1")
    assert application.outcome == "partial" and application.reboot_asked_version == 1
    assert {r["setting"]: r["status"] for r in application.results} == {
        "HeartbeatInterval": "Accepted",
        "MeterValueSampleInterval": "Accepted",
        "WebSocketPingInterval": "RebootRequired",
        "VendorSpecificThing": "NotSupported",
        "": "Reset Accepted",
    }

    # The reboot's boot changes nothing: no second application, no second reset, however often
    # the sweep runs.
    for _ in range(3):
        assert await sync_to_async(sweep)() == {}
    assert len(a1.actions("Reset")) == len(a2.actions("Reset")) == 1
    assert len(a1.actions("ChangeConfiguration")) == len(BASELINE_16)

    # A1-1 is changed on site; reading its values back shows it drifting, A1-2 not.
    a1.config["HeartbeatInterval"] = "900"
    for station_id in ("A1-1", "A1-2"):
        charger = await Charger.objects.aget(station_id=station_id)
        said = await sync_to_async(baseline_dispatch.read_back_now)(
            charger, await sync_to_async(_settings)(baseline_id)
        )
        assert said == "Read."
    rows = (
        await sync_to_async(api.get)(f"/api/v1/config-baselines/{baseline_id}/chargers/")
    ).json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert {r["station_id"]: r["drifted"] for r in rows} == {"A1-1": 1, "A1-2": 0}

    # The charger's Configuration tab shows the drift and re-applies in one click; the value
    # needing a reboot answers RebootRequired again, and the charger is not reset again.
    web = Client()
    await sync_to_async(web.force_login)(owner)
    page = await sync_to_async(web.get)("/fleet/chargers/A1-1/configuration/")
    assert page.status_code == 200
    assert b"1 value drifted" in page.content and b"900" in page.content
    clicked = await sync_to_async(web.post)("/fleet/chargers/A1-1/configuration/apply/")
    assert clicked.status_code == 302
    assert a1.config["HeartbeatInterval"] == "300"
    assert len(a1.actions("Reset")) == 1
    application = await BaselineApplication.objects.aget(charger__station_id="A1-1")
    assert application.trigger == "demand"
    assert application.results[-1]["status"] == (
        "Reboot already asked once for this version: not asked again."
    )
    page = await sync_to_async(web.get)("/fleet/chargers/A1-1/configuration/")
    assert b"no drift reported" in page.content
    for charger in chargers:
        await charger.stop()


def _settings(baseline_id: int):
    return baseline_services.settings_of(baseline_id)


BASELINE_201 = [
    {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "300"},
    {"component": "SampledDataCtrlr", "variable": "TxUpdatedInterval", "value": "60"},
    {"component": "AuthCtrlr", "variable": "LocalPreAuthorize", "value": "true"},
    {"component": "OCPPCommCtrlr", "variable": "WebSocketPingInterval", "value": "30"},
    {"component": "ClockCtrlr", "variable": "TimeSource", "value": "NTP"},  # read-only here
    {"component": "AcmeCtrlr", "variable": "Turbo", "value": "1"},  # no such component
    {"component": "AuthCtrlr", "variable": "NoSuchThing", "value": "1"},
]
CONFIG_201 = {
    "OCPPCommCtrlr.HeartbeatInterval": "60",
    "OCPPCommCtrlr.WebSocketPingInterval": "0",
    "SampledDataCtrlr.TxUpdatedInterval": "0",
    "AuthCtrlr.LocalPreAuthorize": "false",
    "ClockCtrlr.TimeSource": "Heartbeat",
    # B05.FR.11: at most two setVariableData elements per SetVariables.
    "DeviceDataCtrlr.ItemsPerMessage[SetVariables]": "2",
}


async def test_a_201_baseline_goes_in_the_chargers_items_per_message_in_201_words():
    org, owner = await sync_to_async(organization_with_chargers)("C3-1")
    made = await sync_to_async(api_for(owner).post)(
        "/api/v1/config-baselines/",
        {
            "organization": org.pk,
            "name": "C3",
            "vendor": "Acme",
            "model": "C3",
            "protocol": "2.0.1",
            "settings": BASELINE_201,
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    charger = Charger201(
        "C3-1",
        "C3",
        CONFIG_201,
        readonly=["ClockCtrlr.TimeSource"],
        at_boot=["OCPPCommCtrlr.WebSocketPingInterval"],
    )
    await charger.start()
    await until(lambda: Charger.objects.filter(model="C3").exists(), "the boot")
    assert await sync_to_async(sweep)() == {"partial": 1}
    await until(lambda: charger.boots == 2, "the reboot")

    sets = charger.actions("SetVariables")
    # A charger that has not reported its limit gets the request whole (B06.FR.05); it refuses it
    # as too large (B06.FR.16), its limit is read, and the request goes again in its parts.
    assert [len(s["setVariableData"]) for s in sets] == [7, 2, 2, 2, 1]
    assert charger.actions("Reset") == [{"type": "OnIdle"}]
    application = await BaselineApplication.objects.aget(charger__station_id="C3-1")
    assert {r["setting"]: r["status"] for r in application.results} == {
        "OCPPCommCtrlr.HeartbeatInterval": "Accepted",
        "SampledDataCtrlr.TxUpdatedInterval": "Accepted",
        "AuthCtrlr.LocalPreAuthorize": "Accepted",
        "OCPPCommCtrlr.WebSocketPingInterval": "RebootRequired",
        "ClockCtrlr.TimeSource": "Rejected",
        "AcmeCtrlr.Turbo": "UnknownComponent",
        "AuthCtrlr.NoSuchThing": "UnknownVariable",
        "": "Reset Accepted",
    }
    assert await sync_to_async(sweep)() == {}
    assert len(charger.actions("Reset")) == 1

    # The charger's device model now holds the values it accepted: nothing drifts; a value
    # changed on the charger drifts once it is read back.
    web = Client()
    await sync_to_async(web.force_login)(owner)
    assert (
        b"no drift reported"
        in (await sync_to_async(web.get)("/fleet/chargers/C3-1/configuration/")).content
    )
    charger.config["SampledDataCtrlr.TxUpdatedInterval"] = "15"
    page = await sync_to_async(web.post)("/fleet/chargers/C3-1/configuration/check/", follow=True)
    assert b"Read." in page.content
    # The changed value drifts, and so does the read-only one the charger refused (it reports
    # its own value now that it was read).
    assert b"2 values drifted" in page.content
    found = await sync_to_async(baseline_services.charger_baseline)(
        await Charger.objects.aget(station_id="C3-1")
    )
    assert found is not None
    assert {r.setting.label: r.reported for r in found.rows if r.state == "drifted"} == {
        "SampledDataCtrlr.TxUpdatedInterval": "15",
        "ClockCtrlr.TimeSource": "Heartbeat",
    }
    gets = charger.actions("GetVariables")
    assert gets and all(len(g["getVariableData"]) <= 7 for g in gets)
    await charger.stop()


def test_credentials_are_never_part_of_a_baseline_and_other_organizations_see_nothing():
    org, owner = organization_with_chargers("D4-1")
    Charger.objects.filter(station_id="D4-1").update(vendor="Acme", model="D4")
    api = api_for(owner)
    refused = api.post(
        "/api/v1/config-baselines/",
        {
            "organization": org.pk,
            "name": "bad",
            "vendor": "Acme",
            "model": "D4",
            "protocol": "2.0.1",
            "settings": [
                {"component": "SecurityCtrlr", "variable": "BasicAuthPassword", "value": "x" * 16}
            ],
        },
        format="json",
    )
    assert refused.status_code == 400 and "Security tab" in str(refused.json())
    assert not Baseline.objects.exists()
    refused = api.post(
        "/api/v1/config-baselines/",
        {
            "organization": org.pk,
            "name": "bad",
            "vendor": "Acme",
            "protocol": "1.6",
            "settings": [{"variable": "AuthorizationKey", "value": "00" * 16}],
        },
        format="json",
    )
    assert refused.status_code == 400 and not Baseline.objects.exists()
    made = api.post(
        "/api/v1/config-baselines/",
        {
            "organization": org.pk,
            "name": "D4",
            "vendor": "Acme",
            "protocol": "1.6",
            "settings": [{"variable": "HeartbeatInterval", "value": "300"}],
        },
        format="json",
    )
    assert made.status_code == 201
    baseline_id = made.json()["id"]
    changed = api.patch(
        f"/api/v1/config-baselines/{baseline_id}/",
        {"settings": [{"variable": "HeartbeatInterval", "value": "600"}]},
        format="json",
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2

    other_org, other = organization_with_chargers("E5-1")
    other_api = api_for(other)
    assert other_api.get(f"/api/v1/config-baselines/{baseline_id}/").status_code == 404
    assert other_api.post(f"/api/v1/config-baselines/{baseline_id}/apply/").status_code == 404
    assert other_api.get("/api/v1/config-baselines/").json()["results"] == []
    # Another organization's charger is not one of this baseline's.
    answer = api.post(
        f"/api/v1/config-baselines/{baseline_id}/apply/", {"station_ids": ["E5-1"]}, format="json"
    )
    assert answer.status_code == 400
    assert not BaselineApplication.objects.exists()
    web = Client()
    web.force_login(other)
    assert web.get(f"/fleet/baselines/{baseline_id}/").status_code == 404
    assert web.post(f"/fleet/baselines/{baseline_id}/apply/").status_code == 404
    assert web.get("/fleet/chargers/D4-1/configuration/").status_code == 404
    assert web.post("/fleet/chargers/D4-1/configuration/apply/").status_code == 404
    viewer = Client()
    viewer.force_login(MembershipFactory(organization=org, role="viewer").user)
    assert viewer.get("/fleet/chargers/D4-1/configuration/").status_code == 200
    assert viewer.post(f"/fleet/baselines/{baseline_id}/apply/").status_code == 403
    assert viewer.post("/fleet/chargers/D4-1/configuration/apply/").status_code == 403
    assert not BaselineApplication.objects.exists()
    # Asked on demand for its own chargers: queued for the sweep, nothing sent in the request.
    answer = api.post(f"/api/v1/config-baselines/{baseline_id}/apply/", format="json")
    assert answer.status_code == 202 and answer.json() == {"queued": 1}
    assert BaselineApplication.objects.get().requested_at is not None
    assert not Command.objects.exists()
    # The sweep takes what was asked on demand; D4-1 is not connected.
    assert sweep() == {"offline": 1}
    application = BaselineApplication.objects.get()
    assert application.requested_at is None and application.trigger == "demand"
    assert application.outcome == "offline" and application.version == 2
    assert sweep() == {}  # not again until it boots or is asked again
