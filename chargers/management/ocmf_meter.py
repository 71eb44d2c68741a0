"""A simulated calibrated meter: OCMF records signed with ECDSA P-256 / SHA-256 (pure).

What an Eichrecht meter (or its signing "Messkapsel") produces, for the charger simulator and
the tests: `OCMF|{payload}|{"SA":"ECDSA-secp256r1-SHA256","SD":"<DER signature, hex>"}`
(S.A.F.E. OCMF, "Data Format"; the signature covers the payload section's bytes exactly as
sent), and the ways OCPP carries it (OCA "Signed Meter Values in OCPP" v1.0): the
SignedMeterValueType object (2.0.1 `signedMeterValue`; 1.6 the same object as JSON text in a
sampledValue with format "SignedData") and the `publicKey` text `base64("oca:base16:asn1:<hex
DER>")` (§3.2.2). No Django: the simulator runs without settings.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_ALGORITHM = "ECDSA-secp256r1-SHA256"
# OBIS code of the active energy import register (IEC 62056-6-1), as meters write it in RI.
ENERGY_IMPORT_OBIS = "01-00:01.08.00*FF"


def generate_key() -> ec.EllipticCurvePrivateKey:
    """Return a new P-256 (secp256r1) private key, as a meter's signing key."""
    return ec.generate_private_key(ec.SECP256R1())


def public_key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return the public key as DER SubjectPublicKeyInfo (what meters print, in hex)."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_hex(key: ec.EllipticCurvePrivateKey) -> str:
    """Return the public key as upper-case hex DER, as printed on a meter."""
    return public_key_der(key).hex().upper()


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """Return the public key as PEM text."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def oca_public_key(key: ec.EllipticCurvePrivateKey) -> str:
    """Return the OCPP `publicKey` field: base64 of "oca:base16:asn1:<hex DER>" (OCA §3.2.2)."""
    return base64.b64encode(f"oca:base16:asn1:{public_key_hex(key)}".encode()).decode()


def ocmf_time(when: datetime) -> str:
    """Return OCMF's TM text: `2018-07-24T13:22:04,000+0000 S` (milliseconds, synchronized)."""
    when = when.astimezone(UTC)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%S')},{when.microsecond // 1000:03d}+0000 S"


def sign_payload(key: ec.EllipticCurvePrivateKey, payload: str) -> str:
    """Return the OCMF record of `payload` (a JSON text): header, payload, signature section."""
    signature = key.sign(payload.encode(), ec.ECDSA(hashes.SHA256()))
    section = json.dumps({"SA": SIGNATURE_ALGORITHM, "SD": signature.hex().upper()})
    return f"OCMF|{payload}|{section.replace(' ', '')}"


@dataclass
class SigningMeter:
    """One meter with its key, serial number and transaction pagination counter (OCMF "PG")."""

    key: ec.EllipticCurvePrivateKey
    serial: str = "SIM-METER-1"
    unit: str = "kWh"  # RU: "kWh" (three decimals, Wh resolution) or "Wh"
    pagination: int = 0
    vendor: str = "EVSim"
    model: str = "SimMeter-1"
    records: list[str] = field(default_factory=list)

    def reading(self, wh: int) -> Decimal:
        return Decimal(wh) / 1000 if self.unit == "kWh" else Decimal(wh)

    def sign(
        self,
        *,
        wh: int,
        tx: str,
        when: datetime,
        id_tag: str = "",
        charge_point: str = "",
    ) -> str:
        """Return the OCMF record of one reading `wh` with reason `tx` ("B" begin, "E" end)."""
        self.pagination += 1
        value = self.reading(wh)
        # RV is a JSON number written with its decimals (OCMF: the representation must not be
        # rewritten), so it is placed by hand rather than through json.dumps(float).
        rv = f"{value:.3f}" if self.unit == "kWh" else f"{value:.0f}"
        head = {
            "FV": "1.0",
            "GI": f"{self.vendor} {self.model}",
            "GS": self.serial,
            "PG": f"T{self.pagination}",
            "MV": self.vendor,
            "MM": self.model,
            "MS": self.serial,
            "IS": bool(id_tag),
            "IL": "TRUSTED" if id_tag else "NONE",
            "IT": "ISO14443" if id_tag else "NONE",
            "ID": id_tag,
        }
        if charge_point:
            head.update({"CT": "CBIDC", "CI": charge_point})
        reading = {
            "TM": ocmf_time(when),
            "TX": tx,
            "RV": "__RV__",
            "RI": ENERGY_IMPORT_OBIS,
            "RU": self.unit,
            "RT": "AC",
            "EF": "",
            "ST": "G",
        }
        payload = json.dumps({**head, "RD": [reading]}, separators=(",", ":"))
        payload = payload.replace('"__RV__"', rv)
        record = sign_payload(self.key, payload)
        self.records.append(record)
        return record


def signed_meter_value(record: str, *, public_key: str = "") -> dict[str, str]:
    """Return the SignedMeterValueType of an OCMF record (OCA §3.2.1 / §4.2.1): signingMethod
    empty because OCMF names it inside (SA); publicKey empty unless sent with the value."""
    return {
        "signedMeterData": base64.b64encode(record.encode()).decode(),
        "signingMethod": "",
        "encodingMethod": "OCMF",
        "publicKey": public_key,
    }


_LAST_DIGIT = re.compile(r'("RV":\s*"?[0-9.]*?)([0-9])("?\s*[,}])')


def change_one_digit(record: str) -> str:
    """Return the record with the last digit of its first reading value changed (the signature
    left as it was): what a tampered or corrupted reading looks like."""
    header, payload, signature = record.split("|", 2)
    match = _LAST_DIGIT.search(payload)
    if match is None:
        raise ValueError("no reading value in the record")
    digit = str((int(match[2]) + 1) % 10)
    payload = payload[: match.start(2)] + digit + payload[match.end(2) :]
    return f"{header}|{payload}|{signature}"
