"""Protocol-neutral commands: the 1.6 command a caller names, in OCPP 2.0.1 words. Pure: no Django.

The portal, the admin, the guest flow and the API send remote start/stop, reset, unlock,
availability, cache and trigger commands by their 1.6 names and payloads. For a charger that
speaks 2.0.1, chargers.devices.commands translates them here (part 2: F01/F03 RequestStart/Stop,
B11/B12 Reset, F05 UnlockConnector, G03 ChangeAvailability, C11 ClearCache, F06 TriggerMessage,
H01 ReserveNow),
so no caller needs to know the charger's protocol. 2.0.1 actions pass through unchanged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chargers.ocpp.protocol import OcppError
from chargers.ocpp.protocol201 import CSMS_ACTIONS, PROPERTY_CONSTRAINT_VIOLATION

# 1.6 action -> the 2.0.1 action it becomes.
TRANSLATED = {
    "RemoteStartTransaction": "RequestStartTransaction",
    "RemoteStopTransaction": "RequestStopTransaction",
    "Reset": "Reset",
    "UnlockConnector": "UnlockConnector",
    "ChangeAvailability": "ChangeAvailability",
    "ClearCache": "ClearCache",
    "TriggerMessage": "TriggerMessage",
    "DataTransfer": "DataTransfer",
    "ReserveNow": "ReserveNow",
    "SendLocalList": "SendLocalList",
}
# F06: the 1.6 names of messages a TriggerMessage may ask for, in 2.0.1.
_TRIGGERED = {
    "BootNotification": "BootNotification",
    "Heartbeat": "Heartbeat",
    "MeterValues": "MeterValues",
    "StatusNotification": "StatusNotification",
    "FirmwareStatusNotification": "FirmwareStatusNotification",
    "DiagnosticsStatusNotification": "LogStatusNotification",
}
# The token type of a remote start by our app, portal or guest page: an id the CSMS issued.
REMOTE_START_TOKEN_TYPE = "Central"
# The token type of a card reserved for (a UID read from an RFID card).
CARD_TOKEN_TYPE = "ISO14443"


@dataclass(frozen=True)
class Translated:
    action: str
    payload: dict[str, Any]


def new_remote_start_id() -> int:
    """A remoteStartId (F01: the CSMS's id of this remote start), a positive 31-bit integer."""
    return secrets.randbelow(2**31 - 1) + 1


def _refuse(description: str) -> OcppError:
    return OcppError(PROPERTY_CONSTRAINT_VIOLATION, description)


def translate(
    action: str,
    payload: dict[str, Any],
    *,
    ocpp_transaction_id: str | None = None,
    native: frozenset[str] = CSMS_ACTIONS,
) -> Translated:
    """Return `action`/`payload` as a 2.0.1 charger takes them, or raise OcppError.

    `ocpp_transaction_id` is the charger's transactionId of the session a RemoteStopTransaction
    names (the caller looks it up; None if we have no such 2.0.1 session). `native`: the CSMS
    actions of the charger's version, sent as given (2.1's for a 2.1 charger).
    """
    if action in native and action not in TRANSLATED:
        return Translated(action, payload)
    if action == "RemoteStopTransaction":
        if ocpp_transaction_id is None:
            raise _refuse(f"No 2.0.1 transaction {payload.get('transactionId')!r} on this charger")
        return Translated("RequestStopTransaction", {"transactionId": ocpp_transaction_id})
    translator = _TRANSLATORS.get(action)
    if translator is None:
        raise OcppError(
            "NotSupported", f"{action} is an OCPP 1.6 action; this charger speaks OCPP 2.0.1"
        )
    return Translated(TRANSLATED[action], translator(payload))


def _remote_start(payload: dict[str, Any]) -> dict[str, Any]:
    """F01 RequestStartTransaction: the card as a Central idToken, a new remoteStartId."""
    if "chargingProfile" in payload:
        # A 1.6 TxProfile is not a 2.0.1 ChargingProfileType: send RequestStartTransaction.
        raise _refuse("Send a 2.0.1 chargingProfile with RequestStartTransaction")
    start: dict[str, Any] = {
        "idToken": {"idToken": str(payload.get("idTag", "")), "type": REMOTE_START_TOKEN_TYPE},
        "remoteStartId": new_remote_start_id(),
    }
    if payload.get("connectorId"):
        start["evseId"] = payload["connectorId"]  # an EVSE is what 1.6 calls a connector
    return start


def _reset(payload: dict[str, Any]) -> dict[str, Any]:
    """B11/B12: Hard resets at once; Soft waits for transactions to end. Anything else is passed
    on for the schema check to refuse."""
    reset_type = payload.get("type")
    return {
        **payload,
        "type": {"Hard": "Immediate", "Soft": "OnIdle"}.get(str(reset_type), reset_type),
    }


def _unlock(payload: dict[str, Any]) -> dict[str, Any]:
    """F05: the 1.6 connector is the EVSE; its (only) connector is 1."""
    if "evseId" in payload:
        return payload
    return {"evseId": payload.get("connectorId"), "connectorId": 1}


def _change_availability(payload: dict[str, Any]) -> dict[str, Any]:
    """G03: the 1.6 type is the operationalStatus; connector 0 (or none) is the whole charger."""
    if "operationalStatus" in payload:
        return payload
    change: dict[str, Any] = {"operationalStatus": payload.get("type")}
    if payload.get("connectorId"):
        change["evse"] = {"id": payload["connectorId"]}
    return change


def _trigger(payload: dict[str, Any]) -> dict[str, Any]:
    """F06: the 1.6 name of the requested message in 2.0.1, for one EVSE or the charger."""
    requested = payload.get("requestedMessage")
    trigger: dict[str, Any] = {"requestedMessage": _TRIGGERED.get(str(requested), requested)}
    if payload.get("connectorId"):
        trigger["evse"] = {"id": payload["connectorId"]}
    elif isinstance(payload.get("evse"), dict):
        trigger["evse"] = payload["evse"]
    return trigger


def _reserve(payload: dict[str, Any]) -> dict[str, Any]:
    """H01: id, expiryDateTime, idToken, evseId (none: any EVSE), groupIdToken."""
    if "idToken" in payload:
        return payload
    reserve: dict[str, Any] = {
        "id": payload.get("reservationId"),
        "expiryDateTime": payload.get("expiryDate"),
        "idToken": {"idToken": str(payload.get("idTag", "")), "type": CARD_TOKEN_TYPE},
    }
    if payload.get("connectorId"):
        reserve["evseId"] = payload["connectorId"]
    if payload.get("parentIdTag"):
        reserve["groupIdToken"] = {
            "idToken": str(payload["parentIdTag"]),
            "type": CARD_TOKEN_TYPE,
        }
    return reserve


def _local_list(payload: dict[str, Any]) -> dict[str, Any]:
    return payload if "versionNumber" in payload else local_list_to_201(payload)


def _unchanged(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


# The payload of each 1.6 action (but RemoteStopTransaction, which needs the charger's
# transactionId) in 2.0.1 words; the action's 2.0.1 name is TRANSLATED's.
_TRANSLATORS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "RemoteStartTransaction": _remote_start,
    "Reset": _reset,
    "UnlockConnector": _unlock,
    "ChangeAvailability": _change_availability,
    "TriggerMessage": _trigger,
    "ReserveNow": _reserve,
    "SendLocalList": _local_list,
    "ClearCache": _unchanged,
    "DataTransfer": _unchanged,
}


# -- Local authorization list (1.6 §5.15 / 2.0.1 D01): one list, two shapes --------------------------


def local_list_to_201(payload: dict[str, Any]) -> dict[str, Any]:
    """Return a 1.6 SendLocalList as a 2.0.1 one (D01): idTag -> idToken, idTagInfo -> idTokenInfo
    (expiryDate -> cacheExpiryDateTime, parentIdTag -> groupIdToken); an entry without idTagInfo
    removes the card in a differential update, as in 1.6."""
    entries = []
    for entry in payload.get("localAuthorizationList") or []:
        item: dict[str, Any] = {
            "idToken": {"idToken": str(entry.get("idTag", "")), "type": CARD_TOKEN_TYPE}
        }
        info = entry.get("idTagInfo")
        if isinstance(info, dict):
            token_info: dict[str, Any] = {"status": info.get("status")}
            if info.get("expiryDate"):
                token_info["cacheExpiryDateTime"] = info["expiryDate"]
            if info.get("parentIdTag"):
                token_info["groupIdToken"] = {
                    "idToken": str(info["parentIdTag"]),
                    "type": CARD_TOKEN_TYPE,
                }
            item["idTokenInfo"] = token_info
        entries.append(item)
    translated: dict[str, Any] = {
        "versionNumber": payload.get("listVersion"),
        "updateType": payload.get("updateType"),
    }
    if entries:  # minItems 1: a full update without cards is sent without the list (it empties it)
        translated["localAuthorizationList"] = entries
    return translated


def local_list_as_16(payload: dict[str, Any]) -> dict[str, Any]:
    """Return a SendLocalList we sent (either shape) in 1.6 words, to replay what a charger holds."""
    if "versionNumber" not in payload:
        return payload
    entries = []
    for item in payload.get("localAuthorizationList") or []:
        entry: dict[str, Any] = {"idTag": (item.get("idToken") or {}).get("idToken", "")}
        info = item.get("idTokenInfo")
        if isinstance(info, dict):
            tag_info: dict[str, Any] = {"status": info.get("status")}
            if info.get("cacheExpiryDateTime"):
                tag_info["expiryDate"] = info["cacheExpiryDateTime"]
            if info.get("groupIdToken"):
                tag_info["parentIdTag"] = info["groupIdToken"].get("idToken", "")
            entry["idTagInfo"] = tag_info
        entries.append(entry)
    return {
        "listVersion": payload["versionNumber"],
        "updateType": payload.get("updateType"),
        "localAuthorizationList": entries,
    }
