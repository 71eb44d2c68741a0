"""A meter that signs like a calibrated one, for tests: ECDSA keys and OCMF documents.

`Meter().ocmf(...)` returns `OCMF|{payload}|{signature}` signed with the meter's private key
(ECDSA secp256r1, SHA-256, signature as hex DER: OCMF's defaults); `public_key_hex` is the key
as printed on the meter (hex DER SubjectPublicKeyInfo), the form the meter-keys API takes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# The key forms, the TM text and the 2.0.1 value are the simulator's signing meter's; this Meter
# adds what tests vary (curve, serial, pagination, status, unit) around them.
from chargers.management import ocmf_meter
from chargers.management.ocmf_meter import ocmf_time


@dataclass
class Meter:
    serial: str = "EMH-1234567"
    curve: ec.EllipticCurve = field(default_factory=ec.SECP256R1)
    signing_method: str = "ECDSA-secp256r1-SHA256"

    def __post_init__(self) -> None:
        self.private_key = ec.generate_private_key(self.curve)

    @property
    def public_key_der(self) -> bytes:
        return ocmf_meter.public_key_der(self.private_key)

    @property
    def public_key_hex(self) -> str:
        return self.public_key_der.hex()

    @property
    def public_key_pem(self) -> str:
        return ocmf_meter.public_key_pem(self.private_key)

    @property
    def public_key_oca(self) -> str:
        """The 2.0.1 / OCA publicKey field: Base64 of oca:base16:asn1:<hex DER>."""
        return ocmf_meter.oca_public_key(self.private_key)

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
    return ocmf_meter.signed_meter_value(
        ocmf_text, public_key=meter.public_key_oca if with_key else ""
    )


def signed_data_16(meter: Meter, ocmf_text: str, *, with_key: bool = False) -> str:
    """OCPP 1.6 SignedData value (OCA note 3.2.1): SignedMeterValueType as JSON text."""
    return json.dumps(signed_meter_value_201(meter, ocmf_text, with_key=with_key))
