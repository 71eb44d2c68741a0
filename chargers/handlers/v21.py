"""OCPP 2.1 handlers: a mapping layer over the 2.0.1 handlers (chargers.handlers.v201).

A 2.1 Charging Station is served by the same handlers, services and domain as a 2.0.1 one; this
module only says where the two differ on the wire:

- every frame is checked against the 2.1 schemas (the connection carries them: v201 validates
  with `conn.requests`), never against 2.0.1's, which refuse what 2.1 allows;
- an idToken may be up to 255 characters in 2.1 where the domain keeps 36 (a card's UID, the
  session's driver, a decision): a longer one is named in the domain by a fixed 36-character
  form (`domain_id_token`), the same for every message that carries it, so the same card starts
  and stops its transaction, and no card of ours can match it by accident;
- an action 2.1 added that a Charging Station sends is recognised and answered NotSupported
  (chargers.ocpp.protocol21 and v201.handle_call), never with a made-up success.

What 2.1 added inside a message the domain keeps whole (a TransactionEvent's row, notices, the
device model, the message log) is kept there as sent; the idToken's free-text `type` is read
like 2.0.1's (`TxEvent.id_token_type`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chargers.handlers import v201
from chargers.ocpp import protocol21
from chargers.ocpp.protocol201 import NOT_SUPPORTED, OcppError, validate

VERSION = "2.1"
# The domain's idToken: a card's UID, a session's driver, a decision (authorization.models.Token,
# chargers.models.ChargingSession): 36 characters, 2.0.1's IdTokenType.idToken.
DOMAIN_ID_TOKEN_MAX = 36
_PREFIX = 20  # of a longer token, kept readable in the portal
_DIGEST = DOMAIN_ID_TOKEN_MAX - _PREFIX - 1  # 15 hex digits: 60 bits, no preimage by search


@dataclass
class Connection(v201.Connection):
    """What a handler knows about a 2.1 charger on this socket: a 2.0.1 connection validated
    with the 2.1 schemas."""

    ocpp_version: str = VERSION
    requests: Mapping[str, Any] = field(default_factory=lambda: protocol21.REQUEST_VALIDATORS)


def domain_id_token(value: str) -> str:
    """The idToken as the domain names it: unchanged up to 36 characters; a longer one (2.1
    allows 255) as its first 20 characters, `~` and 15 hex digits of the SHA-256 of the whole
    token (case-insensitive, as idTokens are), so two long tokens never share a name."""
    if len(value) <= DOMAIN_ID_TOKEN_MAX:
        return value
    digest = hashlib.sha256(value.strip().upper().encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[:_PREFIX]}~{digest[:_DIGEST]}"


def _mapped_token(token: Any) -> Any:
    if not isinstance(token, dict):
        return token
    value = token.get("idToken")
    if not isinstance(value, str) or len(value) <= DOMAIN_ID_TOKEN_MAX:
        return token
    return {**token, "idToken": domain_id_token(value)}


# Where a Charging Station's 2.1 messages that we serve carry an idToken.
_ID_TOKEN_FIELDS = {"Authorize": ("idToken",), "TransactionEvent": ("idToken",)}


def to_domain(action: str, payload: dict) -> dict:
    """The payload in the words the 2.0.1 handlers and the domain use (a new dict when anything
    changed; the received one, which the message log keeps, otherwise)."""
    fields = _ID_TOKEN_FIELDS.get(action, ())
    changed = {name: _mapped_token(payload[name]) for name in fields if name in payload}
    if all(changed[name] is payload[name] for name in changed):
        return payload
    return {**payload, **changed}


def _violation(action: str, payload: dict) -> str:
    try:
        validate(protocol21.REQUEST_VALIDATORS[action], payload)
    except OcppError as exc:
        return exc.description
    return ""


async def handle_call(conn: Connection, action: str, payload: dict, unique_id: str) -> dict:
    """Answer one CALL of a 2.1 Charging Station through the 2.0.1 handlers (the consumer has
    checked the action is one a 2.1 Charging Station sends)."""
    if action not in v201.HANDLERS:
        # 2.1's own messages (DER, battery swap, periodic streams, payment terminals, ...).
        raise OcppError(NOT_SUPPORTED, f"{action} is not supported by this CSMS")
    mapped = to_domain(action, payload)
    if mapped is payload:
        return await v201.handle_call(conn, action, payload, unique_id)
    # The received payload is what is checked: mapping must not hide a violation.
    if action not in v201.LENIENT:
        validate(protocol21.REQUEST_VALIDATORS[action], payload)
        return await v201.handle_call(conn, action, mapped, unique_id)
    violation = _violation(action, payload)
    answer = await v201.handle_call(conn, action, mapped, unique_id)
    conn.violation = conn.violation or violation
    return answer
