"""The baseline rules alone (fleet/baselines/rules.py): when a boot makes a baseline due, the outcome
of an application, the reboot asked once per version, drift and what never counts as drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.baselines import rules as baselines
from fleet.baselines.rules import Reported, Setting

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)
FP = "Acme|A1|1.0"


@pytest.mark.parametrize(
    ("applied", "boot", "due"),
    [
        (None, T0, True),  # never applied
        (None, None, False),  # never booted
        ((1, FP, "applied", LATER), T0, False),  # no boot since
        ((1, FP, "applied", T0), LATER, False),  # a reconnect that changes nothing
        ((1, FP, "reboot", T0), LATER, False),  # the reboot it asked for
        ((1, FP, "queued", T0), LATER, False),  # being applied
        ((1, "Acme|A1|2.0", "applied", T0), LATER, True),  # new firmware
        ((2, FP, "applied", T0), LATER, True),  # another version of the baseline
        ((1, FP, "offline", T0), LATER, True),  # it never reached the charger
        ((1, FP, "failed", T0), LATER, True),
    ],
)
def test_boot_due(applied, boot, due):
    version, fingerprint, outcome, at = applied or (None, "", "", None)
    assert (
        baselines.boot_due(
            baseline_version=1,
            fingerprint=FP,
            last_boot_at=boot,
            applied_version=version,
            applied_fingerprint=fingerprint,
            applied_outcome=outcome,
            applied_at=at,
        )
        is due
    )


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        (["Accepted", "Accepted"], "applied"),
        (["Accepted", "RebootRequired"], "reboot"),
        (["Accepted", "Rejected"], "partial"),
        (["NotSupported"], "partial"),
        (["UnknownVariable", "RebootRequired"], "partial"),
        (["Accepted", None], "partial"),
        ([None, None], "failed"),
    ],
)
def test_outcome(statuses, outcome):
    assert baselines.outcome(statuses) == outcome


def test_a_reboot_is_asked_once_per_version():
    assert baselines.reboot_to_ask(["RebootRequired"], 3, None)
    assert baselines.reboot_to_ask(["RebootRequired"], 3, 2)
    assert not baselines.reboot_to_ask(["RebootRequired"], 3, 3)
    assert not baselines.reboot_to_ask(["Accepted"], 3, None)


@pytest.mark.parametrize(
    ("wanted", "reported", "equal"),
    [
        ("true", "True", True),
        ("60", "60.0", True),
        (
            "Energy.Active.Import.Register,Power.Active.Import",
            "Energy.Active.Import.Register, Power.Active.Import",
            True,
        ),
        ("60", "61", False),
        ("NTP", "Heartbeat", False),
        ("true", "1", False),
    ],
)
def test_values_as_chargers_report_them(wanted, reported, equal):
    assert baselines.values_equal(wanted, reported) is equal


def test_write_only_values_and_credentials_are_never_drift():
    settings = [
        Setting("SecretThing", "x", component="AcmeCtrlr"),
        Setting("BasicAuthPassword", "y" * 16, component="SecurityCtrlr"),
        Setting("HeartbeatInterval", "300", component="OCPPCommCtrlr"),
        Setting("TxUpdatedInterval", "60", component="SampledDataCtrlr"),
    ]
    reported = {
        baselines.key_of(settings[0]): Reported(None, write_only=True),
        baselines.key_of(settings[1]): Reported("whatever"),
        baselines.key_of(settings[2]): Reported("60"),
    }
    states = [d.state for d in baselines.drift(baselines.V201, settings, reported)]
    assert states == ["write-only", "write-only", "drifted", "not reported"]
    rows = baselines.drift(
        baselines.V16,
        [Setting("AuthorizationKey", "00"), Setting("heartbeatinterval", "300")],
        {
            baselines.key_16("AuthorizationKey"): Reported("****"),
            baselines.key_16("HeartbeatInterval"): Reported("300"),
        },
    )
    assert [r.state for r in rows] == ["write-only", "matches"]


def test_a_16_chargers_keys_are_its_latest_answers():
    reported = baselines.reported_16(
        [
            (
                "GetConfiguration",
                {},
                {"configurationKey": [{"key": "HeartbeatInterval", "value": "60"}]},
            ),
            (
                "ChangeConfiguration",
                {"key": "HeartbeatInterval", "value": "300"},
                {"status": "Accepted"},
            ),
            (
                "ChangeConfiguration",
                {"key": "MeterValueSampleInterval", "value": "5"},
                {"status": "Rejected"},
            ),
            (
                "GetConfiguration",
                {},
                {"configurationKey": [{"key": "MeterValueSampleInterval", "value": "10"}]},
            ),
        ]
    )
    assert reported == {
        ("heartbeatinterval",): Reported("300"),
        ("metervaluesampleinterval",): Reported("10"),
    }


def test_201_results_are_matched_by_component_and_variable():
    settings = [
        Setting("HeartbeatInterval", "300", component="OCPPCommCtrlr"),
        Setting("Enabled", "true", component="EVSE", evse_id=2),
        Setting("Missing", "1", component="X"),
    ]
    results = [
        {
            "attributeStatus": "Rejected",
            "component": {"name": "EVSE", "evse": {"id": 2}},
            "variable": {"name": "Enabled"},
        },
        {
            "attributeStatus": "Accepted",
            "attributeType": "Actual",
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        },
    ]
    assert baselines.statuses_201(settings, results) == ["Accepted", "Rejected", None]
    data = baselines.set_variable_data(settings[1:2])
    assert data == [
        {
            "attributeType": "Actual",
            "attributeValue": "true",
            "component": {"name": "EVSE", "evse": {"id": 2}},
            "variable": {"name": "Enabled"},
        }
    ]
