"""Pure: read and verify OCMF signed meter readings (no Django).

OCMF (Open Charge Metering Format, S.A.F.E. e.V.) is `OCMF|{payload JSON}|{signature JSON}`.
The meter signs the payload section exactly as it appears between the pipes; the signature
section names the algorithm (SA, default ECDSA-secp256r1-SHA256), the signature's encoding (SE,
default hex) and the signature itself (SD, a DER-encoded ECDSA signature).

OCPP wraps it: 2.0.1 `signedMeterValue.signedMeterData` is Base64 of the OCMF text; 1.6
sampledValue with format SignedData carries the same SignedMeterValueType as JSON text (OCA
"Signed Meter Values in OCPP" 3.2.1), or, from older chargers, the OCMF text itself, or Base64 or
hex of it. `unwrap` takes all of these. Public keys come as hex DER (SubjectPublicKeyInfo, as
printed on the meter), PEM, Base64 DER, or the OCA form `oca:base16:asn1:<hex>` (3.2.2), which
is itself Base64 inside a 2.0.1 `publicKey`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_SIGNING_METHOD = "ECDSA-secp256r1-SHA256"

# OCA note table 12 (signingMethod values) = OCMF SA values; SHA-256 for all of them.
CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECDSA-secp192r1-SHA256": ec.SECP192R1,
    "ECDSA-secp256r1-SHA256": ec.SECP256R1,
    "ECDSA-secp256k1-SHA256": ec.SECP256K1,
    "ECDSA-secp384r1-SHA256": ec.SECP384R1,
    "ECDSA-brainpool256r1-SHA256": ec.BrainpoolP256R1,
    "ECDSA-brainpool384r1-SHA256": ec.BrainpoolP384R1,
}

# OCMF RU values for energy, and their factor to Wh.
ENERGY_UNITS = {"kWh": Decimal(1000), "Wh": Decimal(1)}

# Largest RV exponent read (10^18 kWh is beyond any register): 1e999999999 overflowed Decimal.
MAX_VALUE_EXPONENT = 18

# OCMF ST (meter status): only G (good) is a reading to bill.
METER_STATUS = {
    "N": "not present",
    "G": "good",
    "T": "timeout",
    "D": "disconnected",
    "R": "not found",
    "M": "manipulated",
    "X": "exchanged",
    "I": "incompatible",
    "O": "out of range",
    "S": "substitute value",
    "E": "system error",
    "F": "read error",
}


class Status(StrEnum):
    VERIFIED = "verified"
    INVALID_SIGNATURE = "invalid_signature"
    UNKNOWN_KEY = "unknown_key"
    MALFORMED = "malformed"


class Malformed(ValueError):
    """The text is no readable OCMF document (the message says what is wrong, in plain words)."""


@dataclass(frozen=True)
class OcmfValue:
    """One RD entry: a reading of the meter."""

    time: datetime | None  # TM, aware
    time_raw: str
    type: str  # TX: B begin, C charging, X exception, E end, L limit, R rate change, A, T, V
    value: Decimal | None  # RV as sent
    unit: str  # RU
    status: str  # ST
    obis: str = ""  # RI

    @property
    def value_wh(self) -> Decimal | None:
        """The reading in Wh, or None when it is not an energy register."""
        factor = ENERGY_UNITS.get(self.unit)
        if factor is None or self.value is None:
            return None
        return self.value * factor


# OCMF PG: "<indicator><number>", the indicator T (transaction) or F (fiscal), the number a
# counter incremented per record (OCMF spec, Table 2). The spec sets no width; 19 digits keep the
# whole PG in its 20-character column and any 64-bit counter of a meter below 10**19. A longer
# one is no counter (5,000 digits passed Python's 4,300-digit int limit: a 500).
MAX_PAGINATION_DIGITS = 19
PAGINATION = re.compile(rf"[TF]([0-9]{{1,{MAX_PAGINATION_DIGITS}}})")
PAGINATION_MALFORMED = (
    f"the pagination (PG) is not T or F followed by a counter of 1 to {MAX_PAGINATION_DIGITS} "
    "digits"
)


@dataclass(frozen=True)
class OcmfReading:
    """One OCMF document: what the meter signed, and the signature."""

    text: str  # the whole `OCMF|...|...` string, as signed and shown to the driver
    payload_text: str  # the signed bytes (UTF-8)
    payload: dict[str, Any]
    meter_serial: str  # MS
    pagination: str  # PG, e.g. "T12" (transaction counter) or "F3" (fiscal)
    values: tuple[OcmfValue, ...]  # RD
    signing_method: str  # SA (default ECDSA-secp256r1-SHA256)
    signature: bytes  # SD decoded
    identification: str = ""  # ID (the card or session the meter was given), when sent

    @property
    def pagination_number(self) -> int | None:
        """The counter of PG ("T12" -> 12); None when there is none (parse() bounded it)."""
        match = PAGINATION.fullmatch(self.pagination)
        return int(match.group(1)) if match else None

    def value_of(self, kind: str) -> OcmfValue | None:
        """The first reading of this TX type (B, E, ...), or None."""
        return next((v for v in self.values if v.type == kind), None)


@dataclass(frozen=True)
class Wrapped:
    """A signed value as OCPP carried it, unwrapped: the OCMF text and what came beside it."""

    ocmf: str
    encoding: str = "OCMF"
    signing_method: str = ""
    public_key: str = ""  # as sent (Base64 in 2.0.1), not yet read


@dataclass(frozen=True)
class VerificationResult:
    status: Status
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == Status.VERIFIED


@dataclass(frozen=True)
class SessionFacts:
    """What the session says, to check the readings against."""

    started_at: datetime | None = None
    stopped_at: datetime | None = None
    meter_serial: str = ""  # registered for this charger (empty: not checked)
    clock_tolerance: timedelta = field(default=timedelta(minutes=15))


# -- unwrapping --------------------------------------------------------------------------------


def _b64(text: str) -> bytes | None:
    compact = "".join(text.split())
    if not compact or len(compact) % 4 == 1:
        return None
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _hex(text: str) -> bytes | None:
    compact = "".join(text.split())
    if compact.lower().startswith("0x"):
        compact = compact[2:]
    if not compact or len(compact) % 2 or not re.fullmatch(r"[0-9a-fA-F]+", compact):
        return None
    return bytes.fromhex(compact)


def _loads(text: str, problem: str, **options: Any) -> Any:
    """json.loads for what a charger sent: too deep a nesting is Malformed, not RecursionError."""
    try:
        return json.loads(text, **options)
    except (ValueError, RecursionError):
        raise Malformed(problem) from None


def _as_ocmf(data: bytes | None) -> str | None:
    if data is None or not data.startswith(b"OCMF|"):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def unwrap(value: Any) -> Wrapped:
    """Return the OCMF text inside a signed value as OCPP carries it (see the module docstring).

    `value` is a 2.0.1 signedMeterValue object, a 1.6 SignedData value (JSON text of one, or
    OCMF text, Base64 or hex of it). Raises Malformed when no OCMF document is inside.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("OCMF|"):
            return Wrapped(ocmf=text)
        if text.startswith("{"):
            value = _loads(text, "the signed value is neither OCMF nor JSON")
        else:
            ocmf = _as_ocmf(_hex(text)) or _as_ocmf(_b64(text))
            if ocmf is None:
                raise Malformed("the signed value holds no OCMF document")
            return Wrapped(ocmf=ocmf)
    if not isinstance(value, dict):
        raise Malformed("the signed value is not text or an object")
    encoding = str(value.get("encodingMethod") or "OCMF")
    data = value.get("signedMeterData")
    if not isinstance(data, str) or not data:
        raise Malformed("signedMeterData is missing")
    if encoding.upper() != "OCMF" and not data.startswith("OCMF|"):
        raise Malformed(f"encoding {encoding[:50]!r} is not OCMF: cannot be checked")
    inner = unwrap(data)
    return Wrapped(
        ocmf=inner.ocmf,
        encoding="OCMF",
        signing_method=str(value.get("signingMethod") or ""),
        public_key=str(value.get("publicKey") or ""),
    )


# -- parsing -----------------------------------------------------------------------------------


def _time(text: str) -> datetime | None:
    """OCMF TM: `2018-07-24T13:22:04,000+0200 S` (comma or dot, offset, then the clock status)."""
    stamp = text.strip().split(" ")[0].replace(",", ".")
    try:
        parsed = datetime.fromisoformat(stamp)
        # Year 9999 at -23:59 is past year 9999 in UTC: it could be stored but never read back.
        parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _value(entry: Any) -> OcmfValue:
    if not isinstance(entry, dict):
        raise Malformed("a reading (RD) is not an object")
    raw_value = entry.get("RV")
    try:
        value = Decimal(str(raw_value)) if raw_value is not None else None
    except InvalidOperation:
        raise Malformed(f"reading value RV {str(raw_value)[:20]!r} is not a number") from None
    if value is not None and not value.is_finite():
        raise Malformed("reading value RV is not a finite number")
    if value is not None and value and value.adjusted() > MAX_VALUE_EXPONENT:
        raise Malformed("reading value RV is out of range")
    time_raw = str(entry.get("TM") or "")
    return OcmfValue(
        time=_time(time_raw),
        time_raw=time_raw,
        type=str(entry.get("TX") or ""),
        value=value,
        unit=str(entry.get("RU") or ""),
        status=str(entry.get("ST") or ""),
        obis=str(entry.get("RI") or ""),
    )


def _signature(section: dict[str, Any]) -> bytes:
    data = section.get("SD")
    if not isinstance(data, str) or not data:
        raise Malformed("the signature (SD) is missing")
    encoding = str(section.get("SE") or "hex").lower()
    decoded = _b64(data) if encoding == "base64" else _hex(data)
    if decoded is None:
        raise Malformed(f"the signature (SD) is not {encoding}")
    return decoded


def parse(text: str) -> OcmfReading:
    """Return the OCMF document in `text` (`OCMF|{payload}|{signature}`); raise Malformed."""
    if not isinstance(text, str) or not text.startswith("OCMF|"):
        raise Malformed("not an OCMF document (it must start with OCMF|)")
    if not text.isascii():
        try:
            text.encode("utf-8")  # the signature is over UTF-8 bytes: a lone surrogate has none
        except UnicodeEncodeError:
            raise Malformed("the OCMF document is not valid Unicode text") from None
    body = text[len("OCMF|") :]
    cut = body.rfind("|")
    if cut < 0:
        raise Malformed("the OCMF document has no signature section")
    payload_text, signature_text = body[:cut], body[cut + 1 :]
    not_json = "a section of the OCMF document is not JSON"
    payload = _loads(payload_text, not_json, parse_float=Decimal)
    signature = _loads(signature_text, not_json)
    if not isinstance(payload, dict) or not isinstance(signature, dict):
        raise Malformed("a section of the OCMF document is not a JSON object")
    readings = payload.get("RD")
    if not isinstance(readings, list) or not readings:
        raise Malformed("the OCMF document holds no reading (RD)")
    pagination = payload.get("PG")
    if pagination not in (None, "") and not (
        isinstance(pagination, str) and PAGINATION.fullmatch(pagination)
    ):
        raise Malformed(PAGINATION_MALFORMED)
    return OcmfReading(
        text=text,
        payload_text=payload_text,
        payload=payload,
        meter_serial=str(payload.get("MS") or ""),
        pagination=str(payload.get("PG") or ""),
        values=tuple(_value(entry) for entry in readings),
        signing_method=str(signature.get("SA") or DEFAULT_SIGNING_METHOD),
        signature=_signature(signature),
        identification=str(payload.get("ID") or ""),
    )


# -- keys --------------------------------------------------------------------------------------


def load_public_key(text: str) -> bytes:
    """Return the DER SubjectPublicKeyInfo of an EC public key written as hex DER, PEM, Base64
    DER or the OCA `oca:base16:asn1:...` form (plain or Base64). Raises ValueError."""
    text = (text or "").strip()
    if not text:
        raise ValueError("The public key is empty.")
    if "BEGIN PUBLIC KEY" in text:
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError("The PEM public key cannot be read.") from None
        return _der_of(key)
    if not text.lower().startswith("oca:") and _hex(text) is None:
        decoded = _b64(text)
        if decoded is not None and decoded.lower().startswith(b"oca:"):
            text = decoded.decode("ascii", "replace")
        elif decoded is not None:
            return _der_from_bytes(decoded)
    if text.lower().startswith("oca:"):
        parts = text.split(":", 3)
        if len(parts) != 4 or parts[2].lower() != "asn1":
            raise ValueError("The OCA public key is not oca:<encoding>:asn1:<key>.")
        raw = _hex(re.sub(r"[^0-9a-fA-F]", "", parts[3])) if parts[1] == "base16" else None
        if parts[1] == "base64":
            raw = _b64(parts[3])
        if raw is None:
            raise ValueError("The OCA public key's content cannot be decoded.")
        return _der_from_bytes(raw)
    raw = _hex(text)
    if raw is None:
        raise ValueError("The public key is not hex DER, PEM or Base64.")
    return _der_from_bytes(raw)


def _der_from_bytes(raw: bytes) -> bytes:
    try:
        key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("The public key is not a DER SubjectPublicKeyInfo.") from None
    return _der_of(key)


def _der_of(key: Any) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("The public key is not an elliptic-curve (ECDSA) key.")
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_curve(der: bytes) -> str:
    """The curve name of a DER EC public key (secp256r1, ...)."""
    key = serialization.load_der_public_key(der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.curve.name


def signing_method_for(der: bytes) -> str:
    """The OCMF SA value that matches this key's curve."""
    curve = key_curve(der)
    for method, cls in CURVES.items():
        if cls.name == curve:
            return method
    raise ValueError(f"The key's curve {curve} is not one OCMF signs with.")


# -- verification ------------------------------------------------------------------------------


def verify(reading: OcmfReading, public_key: bytes | None) -> VerificationResult:
    """Check the signature of `reading` with `public_key` (DER). None: unknown_key."""
    if public_key is None:
        return VerificationResult(Status.UNKNOWN_KEY, "no public key is registered for this meter")
    curve = CURVES.get(reading.signing_method)
    if curve is None:
        return VerificationResult(
            Status.MALFORMED, f"signing method {reading.signing_method[:50]!r} is not supported"
        )
    try:
        key = serialization.load_der_public_key(public_key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return VerificationResult(Status.UNKNOWN_KEY, "the meter's public key cannot be read")
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve.name:
        return VerificationResult(
            Status.INVALID_SIGNATURE,
            f"the key is not a {curve.name} key as {reading.signing_method} needs",
        )
    try:
        key.verify(
            reading.signature, reading.payload_text.encode("utf-8"), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        return VerificationResult(
            Status.INVALID_SIGNATURE, "the signature does not match the signed data"
        )
    except ValueError:
        return VerificationResult(Status.MALFORMED, "the signature is not a DER ECDSA signature")
    return VerificationResult(Status.VERIFIED)


def check_value(
    reading: OcmfReading, value: OcmfValue, facts: SessionFacts, *, nature: str
) -> VerificationResult | None:
    """Return why a signed reading cannot be billed for this session, or None when it can.

    Unit (kWh or Wh), the meter's status, its serial against the registered one, and the
    reading's time within the session (start: not before the start, end: not after the stop,
    with `clock_tolerance` for the two clocks)."""
    if value.value is None:
        return VerificationResult(Status.MALFORMED, "the reading has no value (RV)")
    if value.unit not in ENERGY_UNITS:
        return VerificationResult(
            Status.MALFORMED, f"unit {value.unit[:10]!r} is not an energy unit (kWh or Wh)"
        )
    if value.status and value.status != "G":
        said = METER_STATUS.get(value.status, value.status[:5])
        return VerificationResult(Status.MALFORMED, f"the meter reported its status as {said}")
    if facts.meter_serial and reading.meter_serial and reading.meter_serial != facts.meter_serial:
        return VerificationResult(
            Status.UNKNOWN_KEY,
            f"meter serial {reading.meter_serial[:40]!r} is not the registered "
            f"{facts.meter_serial[:40]!r}",
        )
    if value.time is None:
        return VerificationResult(Status.MALFORMED, "the reading's time (TM) cannot be read")
    slack = facts.clock_tolerance
    if nature == "start" and facts.started_at and value.time < facts.started_at - slack:
        return VerificationResult(
            Status.MALFORMED, "the signed start reading is older than the session"
        )
    if nature == "end" and facts.stopped_at and value.time > facts.stopped_at + slack:
        return VerificationResult(
            Status.MALFORMED, "the signed end reading is later than the session's stop"
        )
    return None


def check_pair(start: OcmfReading, end: OcmfReading) -> str:
    """Return why a signed start and end do not belong together ('' when they do): the same
    meter, the end's pagination counter after the start's, time and register not going back."""
    if start.meter_serial != end.meter_serial:
        return "the start and end readings come from different meters"
    first, last = start.pagination_number, end.pagination_number
    separate = start.text != end.text  # one container may hold both (OCA note 3.1.4)
    if separate and first is not None and last is not None and last <= first:
        return "the end reading's pagination counter is not after the start's"
    begin, finish = start.value_of("B") or start.values[0], end.value_of("E") or end.values[-1]
    if begin.time and finish.time and finish.time < begin.time:
        return "the end reading is older than the start reading"
    if (
        begin.value_wh is not None
        and finish.value_wh is not None
        and finish.value_wh < begin.value_wh
    ):
        return "the end register is below the start register"
    return ""


# -- keys a charger reports for its meters ------------------------------------------------------

_METER_PUBLIC_KEY = re.compile(r"^MeterPublicKey(\d{1,4})$")


def meter_public_key_names(ports: list[int]) -> list[str]:
    """The OCPP 1.6 configuration keys that hold the meters' public keys of these connectors
    (OCA signed meter values note 3.3.1: `MeterPublicKey[ConnectorID]`)."""
    return [f"MeterPublicKey{port}" for port in sorted(set(ports)) if port > 0]


def configured_meter_keys_16(configuration_keys: list[Any]) -> dict[int, str]:
    """Return {connector: key text} from a 1.6 GetConfiguration answer's configurationKey: the
    `MeterPublicKey<N>` entries with a value (the key as the note's 3.2.2 writes it)."""
    found: dict[int, str] = {}
    for entry in configuration_keys:
        if not isinstance(entry, dict):
            continue
        match = _METER_PUBLIC_KEY.match(str(entry.get("key") or ""))
        value = entry.get("value")
        if match and isinstance(value, str) and value.strip():
            found[int(match.group(1))] = value.strip()
    return {port: text for port, text in found.items() if port > 0}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def configured_meter_keys_201(results: list[Any]) -> dict[int, str]:
    """Return {EVSE: key text} from a 2.0.1 GetVariables answer's getVariableResult: the
    accepted FiscalMetering.PublicKey of each EVSE (OCA signed meter values note 4.3.2)."""
    found: dict[int, str] = {}
    for result in results:
        if not isinstance(result, dict) or result.get("attributeStatus") != "Accepted":
            continue
        component = _mapping(result.get("component"))
        variable = _mapping(result.get("variable"))
        evse = _mapping(component.get("evse"))
        value = result.get("attributeValue")
        if (
            component.get("name") == "FiscalMetering"
            and variable.get("name") == "PublicKey"
            and isinstance(evse.get("id"), int)
            and evse["id"] > 0
            and isinstance(value, str)
            and value.strip()
        ):
            found[evse["id"]] = value.strip()
    return found
