"""The eMSP role's pure rules: our party and contract ids, which cards we issue to partner CPOs,
and the real-time authorization answer from the decision made at home.

Pure: no Django (import-linter). Text: ../shared/reference/ocpi/mod_tokens.asciidoc (the same in
2.3.0 but for TokenType EMAID).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .ocpi import parse_datetime

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PARTY = re.compile(r"^[A-Z0-9]{3}$")
_PREFIX_TAIL = re.compile(r"^[A-Z0-9]{0,4}$")
# eMI3 / ISO 15118 eMAID without its check digit: country (2), provider (3), instance (9).
EMAID_LENGTH = 14

# mod_tokens "AllowedType" from our decision's OCPP status (authorization.decisions.Status):
# the card itself blocked or expired says so; a card that may not charge there (a reimbursement
# card outside its stations, a single-session card already charging) is NOT_ALLOWED.
_ALLOWED_OF_STATUS = {
    "Accepted": "ALLOWED",
    "Blocked": "BLOCKED",
    "Expired": "EXPIRED",
    "Invalid": "NOT_ALLOWED",
    "ConcurrentTx": "NOT_ALLOWED",
}

# Our card types -> mod_tokens "TokenType". GUEST tokens (one QR payment, a stay's access code)
# are never issued to other networks.
TOKEN_TYPES = {"RFID": "RFID", "APP": "APP_USER", "OTHER": "OTHER"}


class InvalidIdentity(ValueError):
    """An eMSP identity that OCPI or the eMAID format does not allow; `errors` by field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Identity:
    country_code: str
    party_id: str
    emaid_prefix: str
    business_name: str


def check_identity(
    *, country_code: str, party_id: str, emaid_prefix: str, business_name: str
) -> Identity:
    """Return the identity in upper case, or raise InvalidIdentity saying what is wrong.

    The eMAID prefix must start with the country code and party id (eMI3: the provider id is
    country + party), so every contract id we issue names its owner."""
    cc, pid = country_code.strip().upper(), party_id.strip().upper()
    prefix = (emaid_prefix.strip().upper() or f"{cc}{pid}").replace("-", "").replace("*", "")
    errors: dict[str, str] = {}
    if not _COUNTRY.match(cc):
        errors["country_code"] = "Two letters (ISO 3166-1 alpha-2), e.g. NL."
    if not _PARTY.match(pid):
        errors["party_id"] = "Three letters or digits, as registered, e.g. EVB."
    if not errors and (not prefix.startswith(cc + pid) or not _PREFIX_TAIL.match(prefix[5:])):
        errors["emaid_prefix"] = (
            f"Starts with {cc}{pid} (country code and party id), then up to 4 letters or digits."
        )
    name = business_name.strip()
    if not 1 <= len(name) <= 100:
        errors["business_name"] = "1 to 100 characters: the name partners show."
    if errors:
        raise InvalidIdentity(errors)
    return Identity(cc, pid, prefix, name)


def contract_id(emaid_prefix: str, card_number: int) -> str:
    """Return the contract id (eMAID, 14 characters, no check digit) of our card `card_number`:
    the prefix, then the number zero-padded; stable for the card's life."""
    digits = EMAID_LENGTH - len(emaid_prefix)
    number = str(card_number)
    if len(number) > digits:
        raise ValueError(f"Card number {card_number} does not fit the eMAID prefix {emaid_prefix}.")
    return emaid_prefix + number.zfill(digits)


def card_number_of(emaid: str, emaid_prefix: str) -> int | None:
    """The number of our card whose contract id (`contract_id`) an eMAID is, or None: hyphens
    and case ignored, a check character after the 14 accepted (ISO 15118 certificates carry
    one; the contract's chain, verified before, names the eMAID it was issued for)."""
    plain = emaid.strip().upper().replace("-", "")
    if len(plain) == EMAID_LENGTH + 1:
        plain = plain[:EMAID_LENGTH]
    if len(plain) != EMAID_LENGTH or not plain.startswith(emaid_prefix):
        return None
    digits = plain[len(emaid_prefix) :]
    return int(digits) if digits.isdigit() else None


def allowed_of(status: str) -> str:
    """Return the mod_tokens AllowedType for our decision's status."""
    return _ALLOWED_OF_STATUS.get(status, "NOT_ALLOWED")


def issued_type(card_type: str) -> str | None:
    """Return the OCPI TokenType of one of our card types, or None: not issued to partners."""
    return TOKEN_TYPES.get(card_type)


def card_type_of(ocpi_type: str) -> str | None:
    """Return our card type for an OCPI TokenType a partner asks about, or None."""
    for ours, theirs in TOKEN_TYPES.items():
        if theirs == ocpi_type:
            return ours
    return None


# -- partners' Locations and Tariffs as they push them (mod_locations / mod_tariffs Receiver) --------


class BadObject(ValueError):
    """An object a partner pushed that the text does not allow (OCPI 2001)."""


class UnknownObject(LookupError):
    """The location, EVSE or connector a push names is not known (OCPI 2003)."""


def last_updated_of(obj: Any) -> datetime:
    """Return an object's `last_updated` (required on every pushed object and PATCH)."""
    value = obj.get("last_updated") if isinstance(obj, dict) else None
    if not isinstance(value, str):
        raise BadObject("last_updated is required.")
    try:
        return parse_datetime(value)
    except ValueError:
        raise BadObject("last_updated is not an OCPI DateTime.") from None


# How far ahead of our clock a partner's `last_updated` may be (clocks differ, a time zone sent
# as UTC by mistake is hours): beyond it the object would shadow every later push of it, each
# then "older" than what we hold.
AHEAD = timedelta(days=1)


def check_not_ahead(obj: Any, *, now: datetime) -> None:
    """Refuse a pushed object (or PATCH) whose own `last_updated` is more than AHEAD after
    `now` (BadObject); one without a readable `last_updated` is left to last_updated_of."""
    value = obj.get("last_updated") if isinstance(obj, dict) else None
    try:
        when = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return
    if when is not None and when > now + AHEAD:
        raise BadObject(
            f"last_updated {value} is more than a day after our clock (UTC): send the time "
            "the object changed."
        )


def _list_of_objects(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadObject(f"{where} must be a list of objects.")
    return value


def _list_of_strings(value: Any, where: str) -> None:
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(item, str) for item in value)
    ):
        raise BadObject(f"{where} must be a list of strings.")


def check_location_shape(location: dict) -> dict:
    """A Location's structure as the driver's pages and the start command read it: `evses` a
    list of EVSE objects, each one's `connectors` a list of Connector objects, `capabilities`
    and a connector's `tariff_ids` lists of strings (mod_locations). Raise BadObject: a pushed
    `"evses": 5` was stored and then failed the driver's page of that location."""
    for evse in _list_of_objects(location.get("evses"), "evses"):
        _list_of_strings(evse.get("capabilities"), "An EVSE's capabilities")
        for connector in _list_of_objects(evse.get("connectors"), "An EVSE's connectors"):
            _list_of_strings(connector.get("tariff_ids"), "A connector's tariff_ids")
    return location


def check_owned(obj: Any, *, key: str, value: str, country_code: str, party_id: str) -> dict:
    """Return a pushed Location or Tariff when its id and owner match the URL's (mod_locations
    "PUT Method": the ids in the object and the URL must be the same)."""
    if not isinstance(obj, dict):
        raise BadObject("An object is required.")
    if str(obj.get(key, "")) != value:
        raise BadObject(f"{key} must be the one in the URL.")
    if not 1 <= len(value) <= 36:  # CiString(36): a longer id fits no row
        raise BadObject(f"{key}: 1 to 36 characters.")
    cc, pid = str(obj.get("country_code", "")).upper(), str(obj.get("party_id", "")).upper()
    if (cc, pid) != (country_code.upper(), party_id.upper()):
        raise BadObject("country_code and party_id must be the ones in the URL.")
    last_updated_of(obj)
    return obj


def _index(items: Any, key: str, value: str) -> int | None:
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and str(item.get(key)) == value:
            return i
    return None


def part_of(location: dict, evse_uid: str | None, connector_id: str | None) -> dict:
    """Return the location, one of its EVSEs, or one of that EVSE's connectors; UnknownObject."""
    if evse_uid is None:
        return location
    at = _index(location.get("evses"), "uid", evse_uid)
    if at is None:
        raise UnknownObject("Unknown EVSE.")
    evse = location["evses"][at]
    if connector_id is None:
        return evse
    at = _index(evse.get("connectors"), "id", connector_id)
    if at is None:
        raise UnknownObject("Unknown connector.")
    return evse["connectors"][at]


def _held_newer(location: dict, evse_uid: str, connector_id: str | None, when: datetime) -> bool:
    """Whether the EVSE or connector we hold says a newer state than a push of `when`."""
    try:
        held = last_updated_of(part_of(location, evse_uid, connector_id))
    except (UnknownObject, BadObject):
        return False  # new, or held without a readable last_updated: the push is taken
    return held > when


def _replace(items: Any, key: str, value: str, new: dict) -> list:
    items = list(items) if isinstance(items, list) else []
    at = _index(items, key, value)
    if at is None:
        items.append(new)
    else:
        items[at] = new
    return items


def with_part(
    location: dict, evse_uid: str, connector_id: str | None, new: dict, *, patch: bool
) -> dict:
    """Return the location with an EVSE (or a connector of an EVSE) put whole or patched; the
    location's `last_updated` follows its newest part (mod_locations "PATCH Method"). A PUT of an
    EVSE or connector adds it when new; a PATCH needs it to exist (UnknownObject). A push older
    than the part we hold (its `last_updated`: retried or delivered late) leaves it as it is."""
    when = last_updated_of(new)
    if _held_newer(location, evse_uid, connector_id, when):
        return location
    if connector_id is None:
        key, value = "uid", evse_uid
        if patch:
            new = patched(part_of(location, evse_uid, None), new)
        elif str(new.get("uid", "")) != evse_uid:
            raise BadObject("uid must be the one in the URL.")
        evses = _replace(location.get("evses"), key, value, new)
        updated = {**location, "evses": evses}
    else:
        evse = part_of(location, evse_uid, None)
        if patch:
            new = patched(part_of(location, evse_uid, connector_id), new)
        elif str(new.get("id", "")) != connector_id:
            raise BadObject("id must be the one in the URL.")
        connectors = _replace(evse.get("connectors"), "id", connector_id, new)
        evse = {**evse, "connectors": connectors, "last_updated": new["last_updated"]}
        updated = {**location, "evses": _replace(location.get("evses"), "uid", evse_uid, evse)}
    if when > last_updated_of(location):
        updated["last_updated"] = new["last_updated"]
    return updated


def patched(obj: dict, changes: Any) -> dict:
    """Return `obj` with a PATCH's fields (its `last_updated` required)."""
    if not isinstance(changes, dict):
        raise BadObject("A PATCH body is an object.")
    last_updated_of(changes)
    for key in ("id", "uid", "country_code", "party_id"):
        if key in changes and str(changes[key]) != str(obj.get(key)):
            raise BadObject(f"{key} cannot change.")
    return {**obj, **changes}


# -- commands we send as the eMSP (mod_commands) --------------------------------------------------

COMMAND_RESPONSES = frozenset({"NOT_SUPPORTED", "REJECTED", "ACCEPTED", "UNKNOWN_SESSION"})
COMMAND_RESULTS = frozenset(
    {
        "ACCEPTED",
        "CANCELED_RESERVATION",
        "EVSE_OCCUPIED",
        "EVSE_INOPERATIVE",
        "FAILED",
        "NOT_SUPPORTED",
        "REJECTED",
        "TIMEOUT",
        "UNKNOWN_RESERVATION",
    }
)
# Session statuses (mod_sessions SessionStatus) in which the driver has a session there.
OPEN_SESSION_STATUSES = frozenset({"ACTIVE", "PENDING", "RESERVATION"})


def start_refusal(evse: dict, *, commands_offered: bool) -> str:
    """Why a driver cannot start this EVSE from the app, in their words, or '' when they can:
    the CPO takes no commands, the EVSE says it cannot be started remotely (capabilities listed
    without REMOTE_START_STOP_CAPABLE), or it is not AVAILABLE."""
    if not commands_offered:
        return "This network does not take starts from our app: use your card."
    capabilities = evse.get("capabilities")
    if isinstance(capabilities, list) and "REMOTE_START_STOP_CAPABLE" not in capabilities:
        return "This charger cannot be started from an app: use your card."
    status = str(evse.get("status", ""))
    if status != "AVAILABLE":
        words = STATUS_WORDS.get(status, "not available").lower()
        return f"This charger is {'not available' if status == 'UNKNOWN' else words} right now."
    return ""


def display_text(value: Any) -> str:
    """The first text of a DisplayText list (or a plain string), '' when there is none."""
    if isinstance(value, str):
        return value[:300]
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                return item["text"][:300]
    return ""


@dataclass(frozen=True)
class CommandResponse:
    result: str
    timeout: int | None
    message: str


def command_response_of(data: Any) -> CommandResponse:
    """Read the CPO's CommandResponse; raise BadObject when it is not one."""
    if not isinstance(data, dict) or data.get("result") not in COMMAND_RESPONSES:
        raise BadObject("The answer is not a CommandResponse.")
    timeout = data.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        timeout = None
    return CommandResponse(str(data["result"]), timeout, display_text(data.get("message")))


def command_result_of(body: Any) -> tuple[str, str]:
    """Read a CommandResult (result, message); raise BadObject when it is not one."""
    if not isinstance(body, dict) or body.get("result") not in COMMAND_RESULTS:
        raise BadObject(
            "result: one of " + ", ".join(sorted(COMMAND_RESULTS)) + " (CommandResultType)."
        )
    return str(body["result"]), display_text(body.get("message"))


# -- words for the driver page ----------------------------------------------------------------------

# mod_locations "ConnectorType" as drivers call the plugs; another value is shown spaced out.
STANDARD_WORDS = {
    "IEC_62196_T2": "Type 2",
    "IEC_62196_T2_COMBO": "CCS (Combo 2)",
    "CHADEMO": "CHAdeMO",
    "IEC_62196_T1": "Type 1",
    "IEC_62196_T1_COMBO": "CCS (Combo 1)",
    "IEC_62196_T3A": "Type 3A",
    "IEC_62196_T3C": "Type 3C",
    "DOMESTIC_E": "Type E socket",
    "DOMESTIC_F": "Schuko (type F)",
    "DOMESTIC_G": "Type G socket",
    "GBT_AC": "GB/T AC",
    "GBT_DC": "GB/T DC",
    "TESLA_S": "Tesla",
    "SAE_J3400": "NACS (SAE J3400)",
    "IEC_60309_2_single_16": "Blue CEE 16 A",
    "IEC_60309_2_three_16": "Red CEE 16 A",
    "IEC_60309_2_three_32": "Red CEE 32 A",
    "IEC_60309_2_three_64": "Red CEE 63 A",
}
# mod_locations "Status" of an EVSE.
STATUS_WORDS = {
    "AVAILABLE": "Available",
    "BLOCKED": "Blocked",
    "CHARGING": "In use",
    "INOPERATIVE": "Out of service",
    "OUTOFORDER": "Out of order",
    "PLANNED": "Not opened yet",
    "REMOVED": "Removed",
    "RESERVED": "Reserved",
    "UNKNOWN": "Status unknown",
}


def standard_words(standard: str) -> str:
    return STANDARD_WORDS.get(standard) or standard.replace("_", " ").strip() or "Connector"


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, "Status unknown")
