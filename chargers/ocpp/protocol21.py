"""OCPP-J 2.1 framing, schema validation and error codes. Pure: no I/O, no Django.

Same interface as chargers.ocpp.protocol201, which it extends: the consumer picks one module per
connection by the negotiated subprotocol. The schemas are the official OCPP 2.1 JSON schemas
shipped in the `ocpp` package (`v21/schemas`), compiled once each with fastjsonschema. 2.1 is no
wire superset of 2.0.1 (an idToken grows from 36 to 255 characters and its `type` becomes a free
string, messages gain fields), so a 2.1 frame is checked against the 2.1 schemas only.

The RPC framework adds two message types the pinned library does not know: CALLRESULTERROR (5,
`[5, id, errorCode, errorDescription, errorDetails]`: the receiver of a CALLRESULT could not
process it) and SEND (6, `[6, id, action, payload]`: an unconfirmed message that is never
answered, neither with a CALLRESULT nor with an error). The error codes are 2.0.1's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ocpp

from chargers.ocpp import protocol201
from chargers.ocpp.protocol import (
    CALL,
    CALLERROR,
    CALLRESULT,
    CALLRESULTERROR,
    SEND,
    Frame,
    FrameError,
    LazyValidators,
    OcppError,
    call,
    call_result,
    call_result_json,
    dumps,
    read_frame,
)
from chargers.ocpp.protocol201 import (
    FRAME_ERRORS as FRAME_ERRORS_201,
)
from chargers.ocpp.protocol201 import (
    MAX_MESSAGE_ID_LENGTH,
    NOT_IMPLEMENTED,
    NOT_SUPPORTED,
    call_error,
    validate,
)

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "CALLRESULTERROR",
    "SEND",
    "Frame",
    "FrameError",
    "OcppError",
    "call",
    "call_error",
    "call_result",
    "call_result_json",
    "call_result_error",
    "check_action",
    "check_call",
    "check_outgoing",
    "check_result",
    "parse_frame",
    "validate",
    "REQUEST_VALIDATORS",
    "RESPONSE_VALIDATORS",
    "SUBPROTOCOL",
    "VERSION",
]

SUBPROTOCOL = "ocpp2.1"
VERSION = "2.1"

# What a Charging Station sends to the CSMS: 2.0.1's, and what 2.1 added in that direction
# (DER control, battery swap, periodic event streams, priority charging, payment terminals,
# dynamic schedules, certificate chain status).
CHARGER_ACTIONS = protocol201.CHARGER_ACTIONS | frozenset(
    {
        "BatterySwap",
        "ClosePeriodicEventStream",
        "GetCertificateChainStatus",
        "NotifyDERAlarm",
        "NotifyDERStartStop",
        "NotifyPeriodicEventStream",
        "NotifyPriorityCharging",
        "NotifySettlement",
        "OpenPeriodicEventStream",
        "PullDynamicScheduleUpdate",
        "ReportDERControl",
        "VatNumberValidation",
    }
)
# What the CSMS sends to a Charging Station.
CSMS_ACTIONS = protocol201.CSMS_ACTIONS | frozenset(
    {
        "AFRRSignal",
        "AdjustPeriodicEventStream",
        "ChangeTransactionTariff",
        "ClearDERControl",
        "ClearTariffs",
        "GetDERControl",
        "GetPeriodicEventStream",
        "GetTariffs",
        "NotifyAllowedEnergyTransfer",
        "NotifyWebPaymentStarted",
        "RequestBatterySwap",
        "SetDERControl",
        "SetDefaultTariff",
        "UpdateDynamicSchedule",
        "UsePriorityCharging",
    }
)
KNOWN_ACTIONS = CHARGER_ACTIONS | CSMS_ACTIONS
# Sent as SEND (6) only: its schema file has no Request/Response suffix.
SEND_ACTIONS = frozenset({"NotifyPeriodicEventStream"})

_SCHEMA_DIR = Path(ocpp.__file__).parent / "v21" / "schemas"


def _validators(suffix: str) -> LazyValidators:
    return LazyValidators(
        {path.stem[: -len(suffix)]: path for path in _SCHEMA_DIR.glob(f"*{suffix}.json")}
    )


REQUEST_VALIDATORS = _validators("Request")
RESPONSE_VALIDATORS = _validators("Response")
SEND_VALIDATORS = LazyValidators({name: _SCHEMA_DIR / f"{name}.json" for name in SEND_ACTIONS})

# The 2.0.1 codes for a broken frame, and message types 5 and 6 understood.
FRAME_ERRORS = replace(FRAME_ERRORS_201, rpc21=True)


def parse_frame(text: str) -> Frame:
    """Return the frame in `text`, or raise FrameError with the OCPP-J 2.1 error code."""
    return read_frame(text, FRAME_ERRORS, MAX_MESSAGE_ID_LENGTH)


def check_action(action: str) -> None:
    """Raise OcppError if `action` is not one a Charging Station may send us in a CALL:
    NotImplemented when 2.1 does not know it, NotSupported when only the CSMS sends it (or it
    is only ever sent as a SEND)."""
    if action not in KNOWN_ACTIONS:
        raise OcppError(NOT_IMPLEMENTED, f"Unknown action {action!r}"[:255])
    if action not in CHARGER_ACTIONS or action not in REQUEST_VALIDATORS:
        raise OcppError(NOT_SUPPORTED, f"{action} is not sent by a Charging Station in a CALL")


def check_call(action: str, payload: dict) -> None:
    """Raise OcppError if `action` is not one a Charging Station sends or `payload` breaks its schema."""
    check_action(action)
    validate(REQUEST_VALIDATORS[action], payload)


def check_send(action: str, payload: dict) -> None:
    """Raise OcppError if a SEND is not one 2.1 defines or its payload breaks the schema (only
    recorded: a SEND is never answered)."""
    if action not in SEND_ACTIONS:
        raise OcppError(NOT_IMPLEMENTED, f"{action!r} is not an OCPP 2.1 SEND message"[:255])
    validate(SEND_VALIDATORS[action], payload)


def check_outgoing(action: str, payload: dict) -> None:
    """Raise OcppError if we are about to send a CALL a 2.1 Charging Station would refuse."""
    if action not in CSMS_ACTIONS or action not in REQUEST_VALIDATORS:
        raise OcppError(NOT_SUPPORTED, f"{action} is not an action the CSMS sends in OCPP 2.1")
    validate(REQUEST_VALIDATORS[action], payload)


def check_result(action: str, payload: dict) -> None:
    """Raise OcppError if a Charging Station's CALLRESULT to our `action` breaks its schema (it
    is then answered with a CALLRESULTERROR, and still kept as the command's answer)."""
    if action in RESPONSE_VALIDATORS:
        validate(RESPONSE_VALIDATORS[action], payload)


def call_result_error(
    unique_id: str, code: str, description: str = "", details: dict | None = None
) -> str:
    return dumps([CALLRESULTERROR, unique_id, code, description[:255], details or {}])
