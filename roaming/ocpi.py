"""OCPI wire rules as pure functions: versions, envelope, status codes, credentials tokens, paging.

Pure: no Django, no I/O (checked by import-linter). Section names cite the OCPI 2.2.1 text in
../shared/reference/ocpi/ and the 2.3.0 text in ../shared/reference/ocpi-2.3.0/; the transport
rules used here are the same in both.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import urlencode

# The OCPI versions we speak, oldest first (version_information_endpoint "VersionNumber").
VERSIONS: tuple[str, ...] = ("2.2.1", "2.3.0")
V221, V230 = VERSIONS
MAX_LIMIT = 100  # transport_and_format "Paginated Response": X-Limit, our upper bound per page


class Code(IntEnum):
    """OCPI status codes (status_codes.asciidoc)."""

    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNUSABLE = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003


class Role(StrEnum):
    """CredentialsRole.role values (types "Role enum"). 2.3.0 drops HUB (a hub names itself in
    `hub_party_id` and lists the parties it reaches as their own roles) and its terminology's
    role table adds PTP, the payment terminal provider of the Payments module, which the Role
    enum of the same text does not list: we read and write "PTP"."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"
    PTP = "PTP"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def highest_common(offered: list[str]) -> str | None:
    """Return the newest of our VERSIONS the other platform also offers, or None (credentials
    "Registration": the Sender picks a version both sides speak; we pick the newest)."""
    common = [version for version in VERSIONS if version in offered]
    return max(common, key=_version_key) if common else None


def is_newer(version: str, than: str) -> bool:
    """Whether OCPI `version` is newer than `than` ("2.3.0" > "2.2.1")."""
    return _version_key(version) > _version_key(than)


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


def format_datetime(value: datetime) -> str:
    """Return an OCPI DateTime: UTC, 'Z', whole seconds (types.asciidoc DateTime)."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: str) -> datetime:
    """Parse an OCPI DateTime; one without a zone is UTC (types.asciidoc). Raises ValueError."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is after the last datetime in UTC
        raise ValueError(f"{value} is out of range") from None


def envelope(
    data: Any = None, *, code: int = Code.SUCCESS, message: str = "", now: datetime
) -> dict[str, Any]:
    """Return the OCPI response object (transport_and_format "Response format")."""
    body: dict[str, Any] = {"status_code": int(code)}
    if data is not None:
        body["data"] = data
    if message:
        body["status_message"] = message[:255]
    body["timestamp"] = format_datetime(now)
    return body


# -- credentials tokens ------------------------------------------------------------------------


def new_credentials_token() -> str:
    """Return a fresh credentials token: 43 printable URL-safe characters (string(64))."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the SHA-256 of a credentials token, hex.

    Tokens are 256-bit random strings, so a plain digest is enough to make a stolen database
    useless for calling us, and it keeps the lookup an index hit.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def encode_authorization(token: str) -> str:
    """Return the Authorization header value for `token` (Base64 of its UTF-8 bytes)."""
    return "Token " + base64.b64encode(token.encode()).decode()


def decode_authorization(header: str) -> list[str]:
    """Return the credentials tokens the header may carry, most likely first.

    OCPI 2.2.1 Base64-encodes the token; many 2.1.1/2.2 peers send it as is
    (transport_and_format "Authorization header", NOTE). Both readings are tried.
    """
    parts = header.strip().split(" ", 1)
    if len(parts) != 2 or parts[0].lower() != "token" or not parts[1].strip():
        return []
    raw = parts[1].strip()
    candidates: list[str] = []
    try:
        decoded = base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if decoded and decoded.isprintable():
        candidates.append(decoded.strip())
    candidates.append(raw)
    return candidates


# -- pagination ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


class BadParameter(ValueError):
    """A query parameter the client got wrong (OCPI 2001)."""


_SPACED_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2}T[\d:.]+) (\d{2}:\d{2})$")


def _plus_restored(value: str) -> str:
    """A DateTime from a query string with its offset's "+" left unescaped, which the query
    string reads as a space ("2016-01-01T10:00:00 02:00"): the "+" it was."""
    return _SPACED_OFFSET.sub(r"\1+\2", value.strip())


def _whole_second_up(moment: datetime) -> datetime:
    """`moment` rounded up to a whole second. The last_updated a partner reads has whole seconds
    (format_datetime), of a moment stored with a fraction: "last_updated >= 10:00:00.5" is
    "last_updated >= 10:00:01", which a stored 10:00:00.7 (shown 10:00:00) is not; and
    "last_updated < 10:00:00.5" (date_to, exclusive) holds for it. Compared with the rounded
    bound, a stored moment and the whole second it shows fall on the same side."""
    if moment.microsecond == 0:
        return moment
    try:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:  # 9999-12-31T23:59:59.5Z: nothing is after it
        return moment.replace(microsecond=999999)


def parse_page(params: dict[str, str]) -> Page:
    """Return the paging parameters of a GET list request (transport_and_format "Pagination")."""
    try:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or MAX_LIMIT)
    except ValueError:
        raise BadParameter("offset and limit must be whole numbers") from None
    if offset < 0 or limit < 1:
        raise BadParameter("offset must be >= 0 and limit >= 1")
    dates: dict[str, datetime | None] = {}
    for name in ("date_from", "date_to"):
        value = params.get(name)
        try:
            dates[name] = _whole_second_up(parse_datetime(_plus_restored(value))) if value else None
        except ValueError:
            raise BadParameter(f"{name} is not a DateTime") from None
    return Page(
        offset=offset,
        limit=min(limit, MAX_LIMIT),
        date_from=dates["date_from"],
        date_to=dates["date_to"],
    )


def next_link(base_url: str, params: dict[str, str], page: Page, total: int) -> str | None:
    """Return the Link header to the next page, keeping the request's filters, or None."""
    if page.offset + page.limit >= total:
        return None
    query = {key: value for key, value in params.items() if key not in ("offset", "limit")}
    query = {"offset": str(page.offset + page.limit), "limit": str(page.limit), **query}
    return f'<{base_url}?{urlencode(query)}>; rel="next"'


# -- Locations: status and connector mapping ------------------------------------------------------

# OCPP 1.6 ChargePointStatus -> OCPI 2.2.1 EVSE Status (mod_locations "Status enum").
_EVSE_STATUS = {
    "Available": "AVAILABLE",
    "Preparing": "AVAILABLE",  # plugged in, no session yet: still free for the driver at it
    "Charging": "CHARGING",
    "SuspendedEV": "CHARGING",
    "SuspendedEVSE": "CHARGING",
    "Finishing": "CHARGING",
    "Reserved": "RESERVED",
    "Unavailable": "INOPERATIVE",
    "Faulted": "OUTOFORDER",
}


def evse_status(ocpp_status: str, *, charger_online: bool, out_of_order: bool) -> str:
    """Return the OCPI EVSE status of a connector in OCPP 1.6 status `ocpp_status`."""
    if out_of_order:
        return "OUTOFORDER"
    if not charger_online:
        return "UNKNOWN"
    return _EVSE_STATUS.get(ocpp_status, "UNKNOWN")


def evse_uid(station_id: str, connector_id: int) -> str:
    """Return the EVSE uid of one OCPP connector: one OCPI EVSE per OCPP 1.6 connector."""
    return f"{station_id}*{connector_id}"


def split_evse_uid(uid: str) -> tuple[str, int] | None:
    """Return (station id, connector id) of an EVSE uid, or None if it is not one of ours."""
    station_id, sep, connector = uid.rpartition("*")
    # isdigit() alone takes "²", which int() refuses: ASCII digits only.
    digits = connector.isascii() and connector.isdigit()
    if not sep or not station_id or not digits or int(connector) < 1:
        return None
    return station_id, int(connector)


def evse_id(country_code: str, party_id: str, station_id: str, connector_id: int) -> str:
    """Return the eMI3 EVSE ID: <country>*<operator>*E<power outlet id> (mod_locations EVSE.evse_id)."""
    outlet = "".join(ch for ch in f"{station_id}{connector_id}".upper() if ch.isalnum())
    return f"{country_code.upper()}*{party_id.upper()}*E{outlet}"[:48]


# -- delivery --------------------------------------------------------------------------------------

RETRY_BASE_S = 5
RETRY_MAX_S = 3600


def retry_delay(attempts: int) -> int:
    """Return the seconds to wait before attempt `attempts` + 1: 5 s doubling, at most an hour."""
    return int(min(RETRY_BASE_S * 2 ** max(attempts - 1, 0), RETRY_MAX_S))


def retry_after_seconds(value: str | None, *, now: datetime) -> int | None:
    """Return the wait a partner's `Retry-After` header asks for (RFC 9110 "Retry-After": whole
    seconds, or an HTTP date), at least 1 s and at most RETRY_MAX_S (a partner that asks for
    a day does not stop its pushes for a day: it is asked again within the hour); None when
    there is none or it is not one of the two."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():  # str.isdigit alone takes "²", which int() refuses
        # A number longer than any wait we keep is the longest wait (int() refuses 4,300 digits).
        seconds = float(text) if len(text) <= 9 else float(RETRY_MAX_S)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is GMT (RFC 9110 "Date/Time Formats")
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return int(min(max(math.ceil(seconds), 1), RETRY_MAX_S))


class Refused(Exception):
    """A push or call we do not take: `code` is the OCPI status, `http_status` the HTTP one."""

    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 parses as inf
        raise ValueError(f"{text} is not a finite number")
    return number


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def loads(text: str | bytes) -> Any:
    """Parse a partner's JSON: NaN, Infinity and numbers beyond a float are refused (RFC 8259
    has no such values; Python's parser takes them), so none reaches arithmetic or a column."""
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except RecursionError:  # a partner's answer is not depth-checked as requests are
        raise ValueError("JSON nested too deeply") from None


NUL_WORDS = "Text may not contain the NUL character (\\0)."
SURROGATE_WORDS = (
    "Text may not contain a lone surrogate (an escape from \\ud800 to \\udfff without its "
    "pair): send valid Unicode."
)


def _text_problem_of(text: str) -> str:
    if "\x00" in text:
        return NUL_WORDS
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_WORDS
    return ""


def text_problem(value: Any) -> str:
    """Why a parsed JSON value cannot be stored, in words, or "": PostgreSQL keeps no NUL
    character and no lone surrogate (JSON can carry both), in keys or values."""
    stack = [value]
    while stack:  # not recursive: a deep answer must not exhaust the stack here
        item = stack.pop()
        if isinstance(item, str):
            problem = _text_problem_of(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return ""
