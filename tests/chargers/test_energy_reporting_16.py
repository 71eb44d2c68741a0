"""1.6 chargers are configured to report energy (issue 33 item 9): after an accepted boot a
charger is asked once (GetConfiguration) for MeterValuesSampledData and StopTxnSampledData and
sent a ChangeConfiguration adding Energy.Active.Import.Register where it is missing, unless its
organization turned that off. The fake charger here samples what its configuration says, so a
configured one reports the register and its next session's energy is exact."""

import logging
from decimal import Decimal

import pytest

from chargers.devices.energy_config import problems_16
from chargers.models import Charger, ChargingSession, Command
from chargers.plumbing import follow_ups
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

REGISTER = "Energy.Active.Import.Register"
BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Wallbox"}


@pytest.fixture(autouse=True)
def energy_config_on(settings):
    settings.OCPP_ENERGY_CONFIG_AFTER_BOOT = True


class FakeCharger:
    """A 1.6 charger with a configuration it answers GetConfiguration from and changes on
    ChangeConfiguration (or refuses with `change_status`); its MeterValues hold the measurands
    its MeterValuesSampledData names."""

    def __init__(self, config: dict[str, tuple[str, bool]], change_status: str = "Accepted"):
        self.config = dict(config)  # key -> (value, readonly)
        self.change_status = change_status
        self.client = OcppTestClient("CP-TEST-1")
        self.received: list[list] = []

    async def boot(self) -> None:
        ok, _ = await self.client.connect()
        assert ok
        assert (await self.client.result("BootNotification", BOOT))["status"] == "Accepted"

    async def answer_calls(self) -> None:
        """Answer the central system's CALLs until it sends nothing for a while."""
        while not await self.client.communicator.receive_nothing(timeout=1.5):
            call = await self.client.receive()
            assert call[0] == 2
            self.received.append(call)
            await self.client.send([3, call[1], self._answer(call[2], call[3])])

    def _answer(self, action: str, payload: dict) -> dict:
        if action == "GetConfiguration":
            asked = payload.get("key") or list(self.config)
            return {
                "configurationKey": [
                    {"key": key, "readonly": self.config[key][1], "value": self.config[key][0]}
                    for key in asked
                    if key in self.config
                ],
                "unknownKey": [key for key in asked if key not in self.config],
            }
        assert action == "ChangeConfiguration", action
        if self.change_status == "Accepted":
            self.config[payload["key"]] = (payload["value"], False)
        return {"status": self.change_status}

    def sampled(self, wh: str) -> list[dict]:
        values = {REGISTER: wh, "Current.Import": "16.0"}
        wanted = self.config.get("MeterValuesSampledData", ("", False))[0].split(",")
        return [
            {"value": values[m], "measurand": m, **({"unit": "Wh"} if m == REGISTER else {})}
            for m in wanted
            if m in values
        ]

    def actions(self) -> list[tuple[str, dict]]:
        return [(call[2], call[3]) for call in self.received]


async def _session_ended_by_a_reboot(fake: FakeCharger) -> ChargingSession:
    """A session with one MeterValues, ended by a power loss: the charger's next start on the
    connector supersedes it, so it ends at its last register reading (if it sent one)."""
    client = fake.client
    first = await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 10000,
            "timestamp": "2026-11-20T10:00:00Z",
        },
    )
    await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": first["transactionId"],
            "meterValue": [
                {"timestamp": "2026-11-20T10:30:00Z", "sampledValue": fake.sampled("17010.5")}
            ],
        },
    )
    await client.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 17011,
            "timestamp": "2026-11-20T11:00:00Z",
        },
    )
    return await ChargingSession.objects.aget(transaction_id=first["transactionId"])


async def test_a_charger_lacking_the_energy_register_is_configured_once(charger, token):
    fake = FakeCharger(
        {
            "MeterValuesSampledData": ("Current.Import", False),
            "StopTxnSampledData": ("", False),
            "HeartbeatInterval": ("300", False),
        }
    )
    await fake.boot()
    await fake.answer_calls()
    assert fake.actions() == [
        (
            "GetConfiguration",
            {
                "key": [
                    "MeterValuesSampledData",
                    "StopTxnSampledData",
                    "ChargingScheduleAllowedChargingRateUnit",
                ]
            },
        ),
        (
            "ChangeConfiguration",
            {"key": "MeterValuesSampledData", "value": f"Current.Import,{REGISTER}"},
        ),
        ("ChangeConfiguration", {"key": "StopTxnSampledData", "value": REGISTER}),
    ]
    assert (await Charger.objects.aget(pk=charger.pk)).energy_reporting_checked_at is not None

    session = await _session_ended_by_a_reboot(fake)
    assert session.stop_reason == "Superseded"
    assert session.energy_wh == Decimal("7010.5")  # the register's decimals, not unknown

    # Its next boot, same vendor, model and firmware, asks nothing (issue 48): it was checked,
    # the units it takes in a profile with it (docs/power.md, "Units").
    await fake.client.close()
    fake.client, fake.received = OcppTestClient("CP-TEST-1"), []
    await fake.boot()
    await fake.answer_calls()
    assert fake.actions() == []
    await fake.client.close()


async def test_without_configuration_the_session_has_no_known_energy(charger, token, prop):
    """The same charger in an organization that turned the setting off: nothing is sent, it
    keeps sampling without the register, and the same session ends where it started: the
    7010.5 Wh it delivered are not known to us."""
    prop.organization.configure_energy_reporting = False
    await prop.organization.asave()
    fake = FakeCharger(
        {"MeterValuesSampledData": ("Current.Import", False), "StopTxnSampledData": ("", False)}
    )
    await fake.boot()
    await fake.answer_calls()
    # Nothing asked: its units are learnt from the first profile it refuses (docs/power.md).
    assert fake.actions() == []
    assert not await Command.objects.filter(charger=charger).aexists()
    session = await _session_ended_by_a_reboot(fake)
    assert session.energy_wh == Decimal(0)
    assert (await Charger.objects.aget(pk=charger.pk)).energy_reporting_checked_at is None
    await fake.client.close()


async def test_refusals_and_unknown_keys_are_logged_and_not_asked_again(charger, token, caplog):
    fake = FakeCharger(
        {"MeterValuesSampledData": ("Current.Import", False)}, change_status="Rejected"
    )
    with caplog.at_level(logging.WARNING, logger="chargers.handlers.v16"):
        await fake.boot()
        await fake.answer_calls()
    assert [action for action, _ in fake.actions()] == ["GetConfiguration", "ChangeConfiguration"]
    warning = next(r.getMessage() for r in caplog.records if "CP-TEST-1" in r.getMessage())
    assert "ChangeConfiguration of MeterValuesSampledData answered Rejected" in warning
    assert "StopTxnSampledData is not a key it knows" in warning
    assert (await Charger.objects.aget(pk=charger.pk)).energy_reporting_checked_at is not None

    await fake.client.close()
    fake.client, fake.received = OcppTestClient("CP-TEST-1"), []
    await fake.boot()
    await fake.answer_calls()
    assert fake.actions() == []
    await fake.client.close()


async def test_a_charger_that_has_it_already_is_only_asked(charger, token):
    fake = FakeCharger(
        {
            "MeterValuesSampledData": (f"{REGISTER},Current.Import", False),
            "StopTxnSampledData": (REGISTER, True),
        }
    )
    await fake.boot()
    await fake.answer_calls()
    assert [action for action, _ in fake.actions()] == ["GetConfiguration"]
    assert (await Charger.objects.aget(pk=charger.pk)).energy_reporting_checked_at is not None
    await fake.client.close()


def test_what_keeps_a_charger_from_reporting_energy():
    keys = [
        {"key": "MeterValuesSampledData", "readonly": True, "value": "Voltage"},
        {"key": "StopTxnSampledData", "readonly": False, "value": "x" * 480},
    ]
    assert problems_16(keys, {}) == [
        f"MeterValuesSampledData is read-only without {REGISTER}",
        f"StopTxnSampledData with {REGISTER} would be over 500 characters",
    ]
    assert problems_16(keys[:1], {}) == [
        f"MeterValuesSampledData is read-only without {REGISTER}",
        "StopTxnSampledData is not a key it knows",
    ]
    fine = [
        {"key": k, "readonly": False, "value": "Voltage"}
        for k in ("MeterValuesSampledData", "StopTxnSampledData")
    ]
    assert (
        problems_16(
            fine, {"MeterValuesSampledData": "RebootRequired", "StopTxnSampledData": "Accepted"}
        )
        == []
    )
    assert problems_16(
        fine, {"MeterValuesSampledData": "Accepted", "StopTxnSampledData": "NotSupported"}
    ) == ["ChangeConfiguration of StopTxnSampledData answered NotSupported"]


COMPLETE = {
    "MeterValuesSampledData": (f"{REGISTER},Current.Import", False),
    "StopTxnSampledData": (REGISTER, False),
}


async def _reconnect(fake: FakeCharger, boot: dict) -> None:
    await fake.client.close()
    fake.client = OcppTestClient("CP-TEST-1")
    ok, _ = await fake.client.connect()
    assert ok
    assert (await fake.client.result("BootNotification", boot))["status"] == "Accepted"


async def test_a_reconnect_that_changes_nothing_asks_nothing_a_new_firmware_is_checked(
    charger, token
):
    """Remembered per vendor/model/firmware (issue 48 item 2): the same boot again sends no
    second GetConfiguration; a firmware update may have reset the configuration: asked again."""
    boot = {**BOOT, "firmwareVersion": "1.0.0"}
    fake = FakeCharger(dict(COMPLETE))
    await _reconnect(fake, boot)
    await fake.answer_calls()
    assert [action for action, _ in fake.actions()] == ["GetConfiguration"]
    stored = await Charger.objects.aget(pk=charger.pk)
    assert stored.energy_reporting_checked_for == "Acme|Wallbox|1.0.0"
    assert stored.energy_reporting_problems == ""

    started = follow_ups.queue().started
    await _reconnect(fake, boot)
    assert await fake.client.communicator.receive_nothing(timeout=1.5)
    assert await Command.objects.filter(charger=charger).acount() == 1
    assert follow_ups.queue().started == started  # known with the boot: not even queued

    fake.config["StopTxnSampledData"] = ("", False)  # the update reset it
    await _reconnect(fake, {**boot, "firmwareVersion": "1.1.0"})
    # The check is queued and may start late on a busy process (follow-ups yield to the frame
    # path): wait for its first CALL, then answer until it says nothing more.
    call = await fake.client.receive(timeout=60)
    fake.received.append(call)
    await fake.client.send([3, call[1], fake._answer(call[2], call[3])])
    await fake.answer_calls()
    assert [action for action, _ in fake.actions()] == [
        "GetConfiguration",
        "GetConfiguration",
        "ChangeConfiguration",
    ]
    stored = await Charger.objects.aget(pk=charger.pk)
    assert stored.energy_reporting_checked_for == "Acme|Wallbox|1.1.0"
    await fake.client.close()


async def test_a_silent_charger_s_frames_are_answered_while_its_check_waits(
    charger, token, settings
):
    """The check is a follow-up of its own: a charger that never answers the GetConfiguration
    has its own frames answered meanwhile, costs the call timeout, and is asked after its next
    boot (nothing is remembered)."""
    from chargers.plumbing.background import drain

    settings.OCPP_CALL_TIMEOUT = 2
    fake = FakeCharger(dict(COMPLETE))
    await fake.boot()
    call = await fake.client.receive()
    assert call[2] == "GetConfiguration"  # not answered, ever
    assert "currentTime" in await fake.client.result("Heartbeat", {})
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    assert await fake.client.result("StatusNotification", status) == {}
    assert (await Command.objects.aget(charger=charger)).status == Command.Status.PENDING
    await drain(10)  # the follow-up ends with its call's timeout
    stored = await Charger.objects.aget(pk=charger.pk)
    assert stored.energy_reporting_checked_at is None
    assert (await Command.objects.aget(charger=charger)).status != Command.Status.PENDING
    await fake.client.close()
