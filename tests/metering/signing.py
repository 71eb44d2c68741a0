"""A meter that signs like a calibrated one, for tests: ECDSA keys and OCMF documents.

`Meter().ocmf(...)` returns `OCMF|{payload}|{signature}` signed with the meter's private key
(ECDSA secp256r1, SHA-256, signature as hex DER: OCMF's defaults); `public_key_hex` is the key
as printed on the meter (hex DER SubjectPublicKeyInfo), the form the meter-keys API takes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def ocmf_time(at: datetime) -> str:
    """OCMF TM: 2018-07-24T13:22:04,000+0000 S (milliseconds after a comma, synchronized)."""
    return (
        at.strftime("%Y-%m-%dT%H:%M:%S,")
        + f"{at.microsecond // 1000:03d}"
        + at.strftime("%z")
        + " S"
    )


@dataclass
class Meter:
    serial: str = "EMH-1234567"
    curve: ec.EllipticCurve = field(default_factory=ec.SECP256R1)
    signing_method: str = "ECDSA-secp256r1-SHA256"

    def __post_init__(self) -> None:
        self.private_key = ec.generate_private_key(self.curve)

    @property
    def public_key_der(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def public_key_hex(self) -> str:
        return self.public_key_der.hex()

    @property
    def public_key_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def public_key_oca(self) -> str:
        """The 2.0.1 / OCA publicKey field: Base64 of oca:base16:asn1:<hex DER>."""
        return base64.b64encode(f"oca:base16:asn1:{self.public_key_hex}".encode()).decode()

    def payload(
        self,
        readings: list[tuple[str, Decimal | str, datetime]],
        *,
        pagination: int,
        identification: str = "",
        unit: str = "kWh",
        status: str = "G",
    ) -> str:
        body = {
            "FV": "1.0",
            "GI": "TEST-GATEWAY",
            "GS": "GW-1",
            "GV": "1.0",
            "PG": f"T{pagination}",
            "MV": "Test meters",
            "MS": self.serial,
            "IS": bool(identification),
            "IT": "ISO14443" if identification else "NONE",
            "ID": identification,
            "RD": [
                {
                    "TM": ocmf_time(at),
                    "TX": kind,
                    "RV": float(value),  # a JSON number, as meters send it
                    "RI": "1-b:1.8.0",
                    "RU": unit,
                    "RT": "AC",
                    "EF": "",
                    "ST": status,
                }
                for kind, value, at in readings
            ],
        }
        return json.dumps(body, separators=(",", ":"))

    def sign(self, payload: str) -> str:
        signature = self.private_key.sign(payload.encode(), ec.ECDSA(hashes.SHA256()))
        return f"OCMF|{payload}|" + json.dumps(
            {"SA": self.signing_method, "SD": signature.hex().upper()}, separators=(",", ":")
        )

    def ocmf(
        self,
        kind: str,
        value_kwh: Decimal | str,
        at: datetime,
        *,
        pagination: int,
        **options: str,
    ) -> str:
        """One signed reading: kind B (begin), E (end), C (charging)."""
        return self.sign(self.payload([(kind, value_kwh, at)], pagination=pagination, **options))


def tamper(ocmf_text: str, old: str, new: str) -> str:
    """The OCMF text with one string of its payload changed and the signature kept."""
    head, payload, signature = ocmf_text.split("|")
    assert old in payload, (old, payload)
    return "|".join([head, payload.replace(old, new, 1), signature])


def signed_meter_value_201(meter: Meter, ocmf_text: str, *, with_key: bool = True) -> dict:
    """OCPP 2.0.1 SignedMeterValueType: the OCMF Base64-encoded, the key in the OCA form."""
    return {
        "signedMeterData": base64.b64encode(ocmf_text.encode()).decode(),
        "signingMethod": "",
        "encodingMethod": "OCMF",
        "publicKey": meter.public_key_oca if with_key else "",
    }


def signed_data_16(meter: Meter, ocmf_text: str, *, with_key: bool = False) -> str:
    """OCPP 1.6 SignedData value (OCA note 3.2.1): SignedMeterValueType as JSON text."""
    return json.dumps(signed_meter_value_201(meter, ocmf_text, with_key=with_key))
