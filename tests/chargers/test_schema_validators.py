"""The OCPP schemas are compiled on first use (chargers.ocpp.protocol.LazyValidators): a server
start no longer compiles every schema of both versions, and every action still validates."""

import subprocess
import sys

import pytest

from chargers.ocpp import protocol, protocol201
from chargers.ocpp.protocol import CHARGER_ACTIONS_V16, CSMS_ACTIONS_V16, OcppError, check_call


def test_every_1_6_action_has_both_schemas_and_each_compiles():
    assert set(protocol.REQUEST_VALIDATORS) == set(protocol.RESPONSE_VALIDATORS)
    assert set(CHARGER_ACTIONS_V16) | set(CSMS_ACTIONS_V16) <= set(protocol.REQUEST_VALIDATORS)
    for action in protocol.REQUEST_VALIDATORS:
        assert callable(protocol.REQUEST_VALIDATORS[action]) and callable(
            protocol.RESPONSE_VALIDATORS[action]
        )
    assert (
        len(protocol201.REQUEST_VALIDATORS) > 60
        and "TransactionEvent" in protocol201.REQUEST_VALIDATORS
    )


def test_a_lazily_compiled_schema_still_refuses_a_bad_payload():
    check_call("Heartbeat", {})
    with pytest.raises(OcppError) as refused:
        check_call("BootNotification", {"chargePointVendor": "V"})
    assert refused.value.code == "OccurenceConstraintViolation"


def test_importing_the_protocols_compiles_no_schema():
    code = (
        "import fastjsonschema; calls = []; real = fastjsonschema.compile\n"
        "fastjsonschema.compile = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "import chargers.ocpp.protocol, chargers.ocpp.protocol201\n"
        "print(len(calls))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
