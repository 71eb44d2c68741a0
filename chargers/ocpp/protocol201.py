"""OCPP-J 2.0.1 framing, schema validation and error codes. Pure: no I/O, no Django.

Same interface as chargers.ocpp.protocol (1.6), so the consumer picks one module per
connection by the negotiated subprotocol. The schemas are the official OCPP 2.0.1 JSON schemas
shipped in the `ocpp` package, compiled once with fastjsonschema (as for 1.6: docs/performance.md).
Error codes are the 2.0.1 spellings of OCPP-J 2.0.1 part 4 §4.3 (FormatViolation,
OccurrenceConstraintViolation, MessageTypeNotSupported, RpcFrameworkError, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp

from chargers.ocpp.protocol import (
    CALL,
    CALLERROR,
    CALLRESULT,
    Frame,
    FrameError,
    FrameErrorCodes,
    LazyValidators,
    OcppError,
    call,
    call_error,
    call_result,
    call_result_json,
    dumps,
    format_datetime,
    parse_datetime,
    read_frame,
)

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "Frame",
    "FrameError",
    "OcppError",
    "call",
    "call_error",
    "call_result",
    "call_result_json",
    "dumps",
    "format_datetime",
    "parse_datetime",
    "parse_frame",
    "check_action",
    "check_call",
    "check_outgoing",
    "validate",
    "REQUEST_VALIDATORS",
    "RESPONSE_VALIDATORS",
    "SUBPROTOCOL",
    "VERSION",
]

SUBPROTOCOL = "ocpp2.0.1"
VERSION = "2.0.1"
MAX_MESSAGE_ID_LENGTH = 36  # OCPP-J 2.0.1 part 4 §4.1.4

# OCPP-J 2.0.1 part 4 §4.3, table 8: the only valid error codes.
FORMAT_VIOLATION = "FormatViolation"
GENERIC_ERROR = "GenericError"
INTERNAL_ERROR = "InternalError"
MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
PROTOCOL_ERROR = "ProtocolError"
RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
SECURITY_ERROR = "SecurityError"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"

ERROR_CODES = frozenset(
    {
        FORMAT_VIOLATION,
        GENERIC_ERROR,
        INTERNAL_ERROR,
        MESSAGE_TYPE_NOT_SUPPORTED,
        NOT_IMPLEMENTED,
        NOT_SUPPORTED,
        OCCURRENCE_CONSTRAINT_VIOLATION,
        PROPERTY_CONSTRAINT_VIOLATION,
        PROTOCOL_ERROR,
        RPC_FRAMEWORK_ERROR,
        SECURITY_ERROR,
        TYPE_CONSTRAINT_VIOLATION,
    }
)

# What a Charging Station sends to the CSMS (OCPP 2.0.1 part 2, messages section).
CHARGER_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    }
)
# What the CSMS sends to a Charging Station.
CSMS_ACTIONS = frozenset(
    {
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDisplayMessage",
        "ClearVariableMonitoring",
        "CostUpdated",
        "CustomerInformation",
        "DataTransfer",
        "DeleteCertificate",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDisplayMessages",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "GetTransactionStatus",
        "GetVariables",
        "InstallCertificate",
        "PublishFirmware",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetNetworkProfile",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UnpublishFirmware",
        "UpdateFirmware",
    }
)
KNOWN_ACTIONS = CHARGER_ACTIONS | CSMS_ACTIONS

_SCHEMA_DIR = Path(ocpp.__file__).parent / "v201" / "schemas"

_RULE_TO_ERROR = {
    "type": TYPE_CONSTRAINT_VIOLATION,
    "format": TYPE_CONSTRAINT_VIOLATION,  # a dateTime that is not one is a data-type violation
    "required": OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": OCCURRENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": FORMAT_VIOLATION,
    "enum": PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": PROPERTY_CONSTRAINT_VIOLATION,
}


def _validators(suffix: str) -> LazyValidators:
    return LazyValidators(
        {path.stem[: -len(suffix)]: path for path in _SCHEMA_DIR.glob(f"*{suffix}.json")}
    )


REQUEST_VALIDATORS = _validators("Request")
RESPONSE_VALIDATORS = _validators("Response")


# Part 4 §4.2.3/§4.3: an unreadable frame or message id is an RpcFrameworkError (id "-1"), a
# broken shape a ProtocolError, a payload that is not an object a FormatViolation, and an unknown
# message type MessageTypeNotSupported (§4.4).
FRAME_ERRORS = FrameErrorCodes(
    unreadable=RPC_FRAMEWORK_ERROR,
    id_name="MessageId",
    call_length=PROTOCOL_ERROR,
    action_type=PROTOCOL_ERROR,
    payload_type=FORMAT_VIOLATION,
    result_shape=PROTOCOL_ERROR,
    error_length=PROTOCOL_ERROR,
    unknown_type=MESSAGE_TYPE_NOT_SUPPORTED,
)


def parse_frame(text: str) -> Frame:
    """Return the frame in `text`, or raise FrameError with the OCPP-J 2.0.1 error code."""
    return read_frame(text, FRAME_ERRORS, MAX_MESSAGE_ID_LENGTH)


def check_action(action: str) -> None:
    """Raise OcppError if `action` is not one a Charging Station may send us."""
    if action not in KNOWN_ACTIONS:
        raise OcppError(NOT_IMPLEMENTED, f"Unknown action {action!r}"[:255])
    if action not in CHARGER_ACTIONS or action not in REQUEST_VALIDATORS:
        raise OcppError(NOT_SUPPORTED, f"{action} is not sent by a Charging Station")


def validate(validator: Any, payload: dict) -> None:
    """Raise OcppError with the 2.0.1 error code of the first schema rule `payload` breaks."""
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_TO_ERROR.get(exc.rule or "", FORMAT_VIOLATION)
        raise OcppError(code, exc.message, {"field": exc.name, "rule": exc.rule}) from None


def check_call(action: str, payload: dict) -> None:
    """Raise OcppError if `action` is not one we handle or `payload` breaks its schema."""
    check_action(action)
    validate(REQUEST_VALIDATORS[action], payload)


def check_outgoing(action: str, payload: dict) -> None:
    """Raise OcppError if we are about to send a CALL the Charging Station would refuse."""
    if action not in CSMS_ACTIONS or action not in REQUEST_VALIDATORS:
        raise OcppError(NOT_SUPPORTED, f"{action} is not an action the CSMS sends in OCPP 2.0.1")
    validate(REQUEST_VALIDATORS[action], payload)


# -- idTokenInfo: the authorization engine's decision in 2.0.1 words -------------------------------

# The engine decides with 1.6 statuses and a reason (authorization.decisions); 2.0.1 can say
# more (AuthorizationStatusEnumType), so a few reasons get their sharper 2.0.1 status.
_REASON_TO_STATUS = {
    "unknown_token": "Unknown",
    "charger_not_roaming": "NotAtThisLocation",
    "not_in_local_group": "NotAtThisLocation",
    "reimbursement_not_allowed": "NotAtThisLocation",
    "remote_start_roaming_disabled": "NotAtThisLocation",
}
AUTHORIZATION_STATUSES = frozenset(
    {
        "Accepted",
        "Blocked",
        "ConcurrentTx",
        "Expired",
        "Invalid",
        "NoCredit",
        "NotAllowedTypeEVSE",
        "NotAtThisLocation",
        "NotAtThisTime",
        "Unknown",
    }
)


def id_token_status(status: str, reason: str = "") -> str:
    """Return the 2.0.1 idTokenInfo.status for an engine decision (its status and reason)."""
    mapped = _REASON_TO_STATUS.get(reason, status)
    return mapped if mapped in AUTHORIZATION_STATUSES else "Invalid"
