"""The proxy's rules, without Django: which frames are transaction messages, how transactionIds
are rewritten for each party, which upstream CALLs may reach the charger, and how a decision
reads when a Leader answered. docs/proxy.md explains them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from chargers.ocpp.protocol import CSMS_ACTIONS_V16
from chargers.ocpp.protocol21 import CSMS_ACTIONS as CSMS_ACTIONS_V21
from chargers.ocpp.protocol201 import CSMS_ACTIONS as CSMS_ACTIONS_V201

LEADER = "leader"
FOLLOWER = "follower"

# Charger-to-CSMS messages an upstream must receive even if it is unreachable when they happen
# (billing data): queued durably and delivered in order. Everything else is live-only.
TRANSACTION_ACTIONS = frozenset(
    {"StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent"}
)

# Upstream CALLs that would take the charger away from us (its password, its security profile,
# where it connects): never forwarded, whatever the role.
_PROTECTED_KEYS_V16 = frozenset({"authorizationkey", "securityprofile"})
_PROTECTED_COMPONENTS_V201 = frozenset({"securityctrlr", "ocppcommctrlr"})
_PROTECTED_VARIABLES_V201 = frozenset(
    {"basicauthpassword", "securityprofile", "networkconfigurationpriority", "identity"}
)


def csms_actions(version: str) -> list[str]:
    """Every action a central system may send to a charger of this OCPP version, sorted."""
    if version == "2.1":
        return sorted(CSMS_ACTIONS_V21)
    return sorted(CSMS_ACTIONS_V201 if version == "2.0.1" else CSMS_ACTIONS_V16)


def all_csms_actions() -> list[str]:
    return sorted(CSMS_ACTIONS_V16 | CSMS_ACTIONS_V201 | CSMS_ACTIONS_V21)


def protected(action: str, payload: Any) -> bool:
    """Whether an upstream CALL would change the charger's credentials or connection."""
    if not isinstance(payload, dict):
        return False
    if action == "ChangeConfiguration":
        return str(payload.get("key", "")).lower() in _PROTECTED_KEYS_V16
    if action == "SetNetworkProfile":
        return True
    if action == "SetVariables":
        for item in payload.get("setVariableData") or []:
            if not isinstance(item, dict):
                continue
            component = str((item.get("component") or {}).get("name", "")).lower()
            variable = str((item.get("variable") or {}).get("name", "")).lower()
            if component in _PROTECTED_COMPONENTS_V201 and variable in _PROTECTED_VARIABLES_V201:
                return True
    return False


def upstream_may_send(
    role: str, allowed_actions: list[str], action: str, payload: Any
) -> tuple[bool, str]:
    """(allowed, why not) for a CALL an upstream wants to send to the charger."""
    if protected(action, payload):
        return (
            False,
            f"{action} of the charger's credentials or connection is not allowed through this proxy",
        )
    if role == LEADER or action in allowed_actions:
        return True, ""
    return False, f"{action} is not allowed through this proxy for this backoffice"


# -- transactionId rewriting (OCPP 1.6; 2.0.1 transaction ids are the charger's own) ---------------

Mapper = Callable[[int], int | None]


def _map_int(value: Any, mapper: Mapper) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    mapped = mapper(value)
    return value if mapped is None else mapped


def _transaction_ids(value: Any) -> list[int]:
    """[value] when it can be an OCPP 1.6 transactionId (an integer, 32 bits); else []: a bool,
    a text or a number past 32 bits is no transaction of ours, left as sent."""
    if isinstance(value, bool) or not isinstance(value, int):
        return []
    return [value] if -(2**31) <= value < 2**31 else []


def charger_ids_in(action: str, payload: Any) -> list[int]:
    """The charger-side transactionIds a charger-to-CSMS message refers to."""
    if not isinstance(payload, dict) or action not in ("MeterValues", "StopTransaction"):
        return []
    return _transaction_ids(payload.get("transactionId"))


def rewrite_for_party(action: str, payload: Any, to_party: Mapper) -> Any:
    """A charger message as one party must see it: the charger's transactionId replaced by that
    party's own (unchanged when the party has none recorded for it)."""
    if not charger_ids_in(action, payload):
        return payload
    rewritten = dict(payload)
    rewritten["transactionId"] = _map_int(payload["transactionId"], to_party)
    return rewritten


def party_ids_in(action: str, payload: Any) -> list[int]:
    """The transactionIds a CSMS-to-charger message refers to (in the sender's numbering)."""
    if not isinstance(payload, dict):
        return []
    if action == "RemoteStopTransaction":
        return _transaction_ids(payload.get("transactionId"))
    profile = payload.get("csChargingProfiles")
    if action == "SetChargingProfile" and isinstance(profile, dict):
        return _transaction_ids(profile.get("transactionId"))
    return []


def rewrite_for_charger(action: str, payload: Any, to_charger: Mapper) -> Any:
    """A CSMS message (an upstream's or ours) with its transactionId in the charger's numbering."""
    if not party_ids_in(action, payload):
        return payload
    rewritten = copy.deepcopy(payload)
    if action == "RemoteStopTransaction":
        rewritten["transactionId"] = _map_int(payload["transactionId"], to_charger)
    else:
        profile = rewritten["csChargingProfiles"]
        profile["transactionId"] = _map_int(profile["transactionId"], to_charger)
    return rewritten


def started_transaction_id(action: str, answer: Any) -> int | None:
    """The transactionId a StartTransaction answer gives, if any."""
    if action != "StartTransaction" or not isinstance(answer, dict):
        return None
    value = answer.get("transactionId")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- what the decision says ------------------------------------------------------------------------


def id_token_status(action: str, answer: Any) -> str:
    """The card status in an Authorize / StartTransaction answer (1.6 idTagInfo, 2.0.1 idTokenInfo)."""
    if not isinstance(answer, dict):
        return ""
    info = answer.get("idTagInfo") or answer.get("idTokenInfo") or {}
    return str(info.get("status", "")) if isinstance(info, dict) else ""
