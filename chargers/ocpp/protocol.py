"""OCPP-J 1.6 framing, schema validation and error codes. Pure: no I/O, no Django.

Schemas are the official OCPP 1.6 JSON schemas shipped in the `ocpp` package, compiled
once with fastjsonschema: ~20 µs per MeterValues instead of ~400 µs with jsonschema,
and no thread hop per message (see docs/performance.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp

from chargers.ocpp.storable import loads_flagged, text_is_clean

CALL, CALLRESULT, CALLERROR = 2, 3, 4
# OCPP-J 2.1 adds two message types: CALLRESULTERROR (a CALLRESULT its receiver could not
# process) and SEND (an unconfirmed message: never answered). Read only for 2.1 connections.
CALLRESULTERROR, SEND = 5, 6
MAX_UNIQUE_ID_LENGTH = 36  # OCPP-J 1.6 §4.1.4

# OCPP-J 1.6 §4.2.3 error codes, with the 1.6 wire spellings that the errata keep
# ("will not be fixed", errata §5.1/§5.2). The ocpp package emits other names.
NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = "FormationViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
GENERIC_ERROR = "GenericError"

# What a charger may send to the central system (OCPP 1.6 §4 and the security whitepaper).
CHARGER_ACTIONS_V16 = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "SecurityEventNotification",
        "SignCertificate",
        "LogStatusNotification",
        "SignedFirmwareStatusNotification",
    }
)
# What the central system may send to a charger.
CSMS_ACTIONS_V16 = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)
KNOWN_ACTIONS_V16 = CHARGER_ACTIONS_V16 | CSMS_ACTIONS_V16

_SCHEMA_DIR = Path(ocpp.__file__).parent / "v16" / "schemas"

_RULE_TO_ERROR = {
    "type": TYPE_CONSTRAINT_VIOLATION,
    "format": TYPE_CONSTRAINT_VIOLATION,  # a dateTime that is not one is a data-type violation
    "required": OCCURENCE_CONSTRAINT_VIOLATION,
    "minItems": OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": OCCURENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": FORMATION_VIOLATION,
    "enum": PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": PROPERTY_CONSTRAINT_VIOLATION,
}


class OcppError(Exception):
    """An error to answer with a CALLERROR."""

    def __init__(self, code: str, description: str = "", details: dict | None = None):
        super().__init__(description)
        self.code = code
        self.description = description[:255]
        self.details = details or {}


@dataclass
class Frame:
    message_type: int
    unique_id: str
    action: str = ""
    payload: Any = None
    error_code: str = ""
    error_description: str = ""
    error_details: dict = field(default_factory=dict)
    # Whether the decoded frame may hold what must be cleaned before storing (storable).
    suspect: bool = True


class FrameError(OcppError):
    """A frame we cannot route; unique_id is what we could read of it ("-1" if nothing)."""

    def __init__(self, code: str, description: str, unique_id: str = "-1", payload: Any = None):
        super().__init__(code, description)
        self.unique_id = unique_id
        self.payload = payload
        self.suspect = True  # as Frame.suspect; True where nothing was decoded


class LazyValidators(Mapping[str, Any]):
    """Compiled validators by action, each compiled on first use. Compiling every schema up front
    took 0.25 s for 1.6 and about a second for 2.0.1 at every server start, which a restart storm
    waits for, while a charger uses a handful of actions."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths
        self._compiled: dict[str, Any] = {}

    def __getitem__(self, action: str) -> Any:
        validator = self._compiled.get(action)
        if validator is None:
            schema = json.loads(self._paths[action].read_text())
            # The bundled files declare draft-04 and an $id fastjsonschema would try to resolve.
            schema.pop("$id", None)
            schema.pop("id", None)
            # use_default=False: a validator must not write the schema's defaults into the frame
            # (2.0.1 `offline: false`, `multiplier: 0`, `tbc: false`, ...): the payload is what
            # the Logs show as received and what we send; readers apply the defaults themselves.
            validator = self._compiled[action] = fastjsonschema.compile(schema, use_default=False)
        return validator

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, action: object) -> bool:
        return action in self._paths


_RESPONSE = "Response"
REQUEST_VALIDATORS = LazyValidators(
    {path.stem: path for path in _SCHEMA_DIR.glob("*.json") if not path.stem.endswith(_RESPONSE)}
)
RESPONSE_VALIDATORS = LazyValidators(
    {path.stem[: -len(_RESPONSE)]: path for path in _SCHEMA_DIR.glob(f"*{_RESPONSE}.json")}
)


@dataclass(frozen=True)
class FrameErrorCodes:
    """Which error code each way of breaking the OCPP-J frame gets: the two versions' RPC
    framework words differ (1.6 FormationViolation; 2.0.1 RpcFrameworkError, MessageTypeNotSupported)."""

    unreadable: str  # not JSON, not an array, no usable message id
    id_name: str  # what the version calls the message id
    call_length: str
    action_type: str
    payload_type: str
    result_shape: str
    error_length: str
    unknown_type: str
    # OCPP-J 2.1: CALLRESULTERROR (5, shaped as a CALLERROR) and SEND (6, shaped as a CALL).
    rpc21: bool = False


V16_FRAME_ERRORS = FrameErrorCodes(
    unreadable=FORMATION_VIOLATION,
    id_name="UniqueId",
    call_length=PROTOCOL_ERROR,
    action_type=FORMATION_VIOLATION,
    payload_type=FORMATION_VIOLATION,
    result_shape=FORMATION_VIOLATION,
    error_length=FORMATION_VIOLATION,
    unknown_type=PROTOCOL_ERROR,
)


def read_frame(text: str, codes: FrameErrorCodes, max_id_length: int) -> Frame:
    """Return the frame in `text`, or raise FrameError with the version's code (`codes`)."""
    try:
        message, suspect = loads_flagged(text)
    except (ValueError, RecursionError):
        raise FrameError(codes.unreadable, "Frame is not valid JSON") from None
    try:
        frame = _route(message, codes, max_id_length)
    except FrameError as exc:
        exc.suspect = suspect
        raise
    frame.suspect = suspect
    return frame


def _route(message: Any, codes: FrameErrorCodes, max_id_length: int) -> Frame:
    if not isinstance(message, list) or len(message) < 3:
        raise FrameError(
            codes.unreadable, "Frame is not an OCPP-J array [type, id, ...]", payload=message
        )
    message_type, unique_id = message[0], message[1]
    if not isinstance(unique_id, str) or not unique_id or len(unique_id) > max_id_length:
        raise FrameError(
            codes.unreadable,
            f"{codes.id_name} must be a string of 1 to {max_id_length} characters",
            payload=message,
        )
    if message_type == CALL or (codes.rpc21 and message_type == SEND):
        if len(message) != 4:
            raise FrameError(
                codes.call_length, "CALL and SEND must have 4 elements", unique_id, message
            )
        action, payload = message[2], message[3]
        if not isinstance(action, str):
            raise FrameError(codes.action_type, "Action must be a string", unique_id, message)
        if not isinstance(payload, dict):
            raise FrameError(
                codes.payload_type, "Payload must be a JSON object", unique_id, message
            )
        return Frame(CALL if message_type == CALL else SEND, unique_id, action, payload)
    if message_type == CALLRESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise FrameError(
                codes.result_shape, "CALLRESULT must be [3, id, {payload}]", unique_id, message
            )
        return Frame(CALLRESULT, unique_id, payload=message[2])
    if message_type == CALLERROR or (codes.rpc21 and message_type == CALLRESULTERROR):
        if len(message) != 5:
            raise FrameError(
                codes.error_length, "CALLERROR must have 5 elements", unique_id, message
            )
        details = message[4] if isinstance(message[4], dict) else {}
        return Frame(
            CALLERROR if message_type == CALLERROR else CALLRESULTERROR,
            unique_id,
            error_code=str(message[2]),
            error_description=str(message[3]),
            error_details=details,
            payload=details,
        )
    raise FrameError(
        codes.unknown_type, f"Unknown MessageTypeId {message_type!r}", unique_id, message
    )


def parse_frame(text: str) -> Frame:
    """Return the OCPP-J 1.6 frame in `text`, or raise FrameError with the 1.6 error code."""
    return read_frame(text, V16_FRAME_ERRORS, MAX_UNIQUE_ID_LENGTH)


def check_action(action: str) -> None:
    """Raise OcppError if `action` is not one a charge point may send us."""
    if action not in KNOWN_ACTIONS_V16:
        raise OcppError(NOT_IMPLEMENTED, f"Unknown action {action!r}"[:255])
    if action not in CHARGER_ACTIONS_V16 or action not in REQUEST_VALIDATORS:
        raise OcppError(NOT_SUPPORTED, f"{action} is not sent by a charge point")


def check_call(action: str, payload: dict) -> None:
    """Raise OcppError if `action` is not one we handle or `payload` breaks its schema."""
    check_action(action)
    validate(REQUEST_VALIDATORS[action], payload)


def validate(validator, payload: dict) -> None:
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_TO_ERROR.get(exc.rule or "", FORMATION_VIOLATION)
        raise OcppError(code, exc.message, {"field": exc.name, "rule": exc.rule}) from None


def check_outgoing(action: str, payload: dict) -> None:
    """Raise OcppError if we are about to send a CALL the charger would refuse."""
    if action not in CSMS_ACTIONS_V16 or action not in REQUEST_VALIDATORS:
        raise OcppError(NOT_SUPPORTED, f"{action} is not an action the central system sends")
    validate(REQUEST_VALIDATORS[action], payload)


def dumps(message: list) -> str:
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    if not text_is_clean(text):
        # A lone surrogate (a charger's "\\ud800" echoed in its unique id or an error text) has
        # no UTF-8 form: the websocket could not send the frame and the charger was dropped.
        # Escaped it is valid JSON the charger reads back as it sent it.
        text = json.dumps(message, separators=(",", ":"))
    return text


def call(unique_id: str, action: str, payload: dict) -> str:
    return dumps([CALL, unique_id, action, payload])


def call_result(unique_id: str, payload: dict) -> str:
    return dumps([CALLRESULT, unique_id, payload])


def call_result_json(unique_id: str, payload: dict | None) -> tuple[str, str | None]:
    """`call_result`'s text and its payload's compact JSON, dumped once: the Logs row of every
    answer stores that JSON, which was otherwise dumped a second time. The text is the same as
    `call_result`'s (a list's items joined by ","); None when the text needed escaping."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    text = f"[{CALLRESULT},{json.dumps(unique_id, ensure_ascii=False)},{body}]"
    if not text_is_clean(text):
        return dumps([CALLRESULT, unique_id, payload]), None
    return text, body


def call_payload_json(frame: Frame, text: str) -> str | None:
    """The payload of the CALL `text` (parsed as `frame`) as the charger wrote it, for its
    Logs row, when the frame is written without spaces between its elements (as chargers
    write it); None otherwise (the row then dumps the parsed payload). A literal prefix can
    only match the parsed id and action: an escaped character would read differently."""
    prefix = f'[{CALL},"{frame.unique_id}","{frame.action}",'
    if text.startswith(prefix) and text.endswith("]"):
        return text[len(prefix) : -1]
    return None


def call_error(
    unique_id: str, code: str, description: str = "", details: dict | None = None
) -> str:
    return dumps([CALLERROR, unique_id, code, description[:255], details or {}])


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_datetime(value: str) -> datetime:
    """Parse an OCPP dateTime (ISO 8601 with offset or Z, any fraction length) to aware UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(r"\1", text)  # some chargers send 7-digit fractions
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:  # 1.6 §3.15 wants UTC; a charger without offset means UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """Format an aware datetime as OCPP wants it: UTC with Z, millisecond precision."""
    # isoformat is half strftime's cost (every Heartbeat answer); "+00:00" becomes "Z".
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
