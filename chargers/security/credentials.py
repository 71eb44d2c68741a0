"""Charger passwords for HTTP Basic auth (security profiles 1 and 2): generate, hash, verify.

No ORM here. Generated passwords carry 160 random bits, so a salted HMAC-SHA256 is the right
hash for them: it costs about a microsecond on the handshake path, where a slow KDF would
turn every reconnect storm into a CPU storm, and stretching adds nothing against a guess space
of 2^160 (docs/security.md has the measurement). Hashes made by the earlier PBKDF2 scheme are
still verified and replaced by the fast hash on the next successful login.

OCPP 1.6 AuthorizationKey (security whitepaper §7.2, OCPP-J 1.6 §6): 16 to 20 bytes, set with
ChangeConfiguration as up to 40 hexadecimal digits; on the wire the charger sends the raw key
(the OCPP-J example key holds 0xFF) although many send the hex text itself. Both forms of one
key verify, so the wire password is handled as bytes and never decoded as UTF-8 first.
"""

from __future__ import annotations

import hmac
import re
import secrets

FAST_ALGORITHM = "ocpp_hmac_sha256"
LEGACY_ALGORITHM = "pbkdf2_sha256"
GENERATED_KEY_BYTES = 20  # the AuthorizationKey maximum: 40 hex digits
MIN_PASSWORD_LENGTH = 16
MAX_PASSWORD_LENGTH = 40
MASK = "********"

# 32 to 40 hex digits, whole bytes: the textual form of a 16-20 byte AuthorizationKey.
_HEX_KEY = re.compile(rb"^(?:[0-9A-Fa-f]{2}){16,20}$")


def generate_password() -> str:
    """Return a new charger password: 20 random bytes as 40 hex digits, a valid AuthorizationKey."""
    return secrets.token_hex(GENERATED_KEY_BYTES)


def _as_bytes(raw: str | bytes) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode("utf-8")


def canonical(secret: bytes) -> bytes:
    """Return the raw key for the hex form of an AuthorizationKey, anything else unchanged."""
    if _HEX_KEY.match(secret):
        return bytes.fromhex(secret.decode("ascii"))
    return secret


def _digest(salt: bytes, secret: bytes) -> bytes:
    return hmac.digest(salt, secret, "sha256")


def make_hash(raw: str | bytes) -> str:
    """Return the salted hash stored for `raw` (never the password itself)."""
    salt = secrets.token_bytes(16)
    return f"{FAST_ALGORITHM}${salt.hex()}${_digest(salt, canonical(_as_bytes(raw))).hex()}"


def is_fast(encoded: str) -> bool:
    return encoded.startswith(FAST_ALGORITHM + "$")


def verify(encoded: str, raw: str | bytes) -> bool:
    """Return whether `raw` (as sent: bytes, any encoding) matches the stored hash."""
    if not encoded:
        return False
    wire = _as_bytes(raw)
    algorithm, _, rest = encoded.partition("$")
    if algorithm == FAST_ALGORITHM:
        salt_hex, _, digest_hex = rest.partition("$")
        try:
            salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        except ValueError:
            return False
        # The stored hash is of the canonical form too: the raw key and its hex text both match.
        return hmac.compare_digest(_digest(salt, canonical(wire)), expected)
    if algorithm == LEGACY_ALGORITHM:
        # Earlier hashes were made from text: a password that is not UTF-8 cannot match them.
        try:
            text = wire.decode("utf-8")
        except UnicodeDecodeError:
            return False
        from django.contrib.auth.hashers import PBKDF2PasswordHasher

        return PBKDF2PasswordHasher().verify(text, encoded)  # constant-time compare inside
    return False


def authorization_key_error(value: object) -> str:
    """Return why `value` is not a valid 1.6 AuthorizationKey ("" when it is)."""
    if not isinstance(value, str) or not _HEX_KEY.match(value.encode("ascii", "replace")):
        return (
            "AuthorizationKey must be 32 to 40 hexadecimal digits (a 16 to 20 byte key, "
            "OCPP 1.6 security whitepaper §7.2)."
        )
    return ""


def is_password_variable(item: object) -> bool:
    """Whether a 2.0.1 setVariableData entry sets the charger's password (A01: SecurityCtrlr.
    BasicAuthPassword, write-only)."""
    if not isinstance(item, dict):
        return False
    component, variable = item.get("component"), item.get("variable")
    return (
        isinstance(component, dict)
        and component.get("name") == "SecurityCtrlr"
        and isinstance(variable, dict)
        and variable.get("name") == "BasicAuthPassword"
    )


def redact_payload(action: str, payload: dict) -> dict:
    """Return `payload` as it may be stored or shown: a new AuthorizationKey (1.6) or
    BasicAuthPassword (2.0.1) is masked."""
    if (
        action == "ChangeConfiguration"
        and str(payload.get("key", "")).lower() == "authorizationkey"
    ):
        return {**payload, "value": MASK}
    if (
        action == "SetVariables"
        and isinstance(payload.get("setVariableData"), list)
        and any(is_password_variable(item) for item in payload["setVariableData"])
    ):
        return {
            **payload,
            "setVariableData": [
                {**item, "attributeValue": MASK} if is_password_variable(item) else item
                for item in payload["setVariableData"]
            ],
        }
    return payload


def redact_response(response: object) -> object:
    """Return a charger's answer as it may be stored: an AuthorizationKey a charger reports in
    GetConfiguration.conf (it should not: the key is write-only, OCPP-J 1.6 §6) is masked."""
    if not isinstance(response, dict) or not isinstance(response.get("configurationKey"), list):
        return response
    keys = [
        {**item, "value": MASK}
        if isinstance(item, dict)
        and str(item.get("key", "")).lower() == "authorizationkey"
        and "value" in item
        else item
        for item in response["configurationKey"]
    ]
    return {**response, "configurationKey": keys}
