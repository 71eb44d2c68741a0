"""Contract: a CDR's signed_data (mod_cdrs "SignedData" and "SignedValue") for OCMF records."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargers.management.ocmf_meter import SigningMeter, generate_key, public_key_der
from roaming import mapping
from tests.roaming import spec

WHEN = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def _records() -> tuple[ec.EllipticCurvePrivateKey, list[tuple[str, str]]]:
    key = generate_key()
    meter = SigningMeter(key, serial="MTR-9")
    return key, [
        ("Transaction.Begin", meter.sign(wh=100_000, tx="B", when=WHEN, id_tag="CARD")),
        ("Transaction.End", meter.sign(wh=112_345, tx="E", when=WHEN, id_tag="CARD")),
    ]


def test_ocmf_signed_data_follows_the_spec_tables():
    key, records = _records()
    signed = mapping.ocmf_signed_data(
        records, public_key_der=public_key_der(key), url="https://portal.example/s/abc/"
    )
    data = mapping.signed_data_object(signed)

    spec.check_object(data, "mod_cdrs.asciidoc", "mod_cdrs_signed_data_class")
    for value in data["signed_values"]:
        spec.check_object(value, "mod_cdrs.asciidoc", "mod_cdrs_signed_value_class")
    assert data["encoding_method"] == "OCMF" and data["encoding_method_version"] == 1
    assert [v["nature"] for v in data["signed_values"]] == ["Start", "End"]
    for value, (_, record) in zip(data["signed_values"], records, strict=True):
        assert value["plain_data"] == record
        assert base64.b64decode(value["signed_data"]).decode() == record
    # public_key: base64 of the meter's DER key, string(512).
    assert len(data["public_key"]) <= 512
    loaded = serialization.load_der_public_key(base64.b64decode(data["public_key"]))
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert data["url"] == "https://portal.example/s/abc/"


def test_signed_data_without_key_or_url_leaves_them_out():
    _, records = _records()
    data = mapping.signed_data_object(mapping.ocmf_signed_data(records, public_key_der=None))
    assert "public_key" not in data and "url" not in data
    spec.check_object(data, "mod_cdrs.asciidoc", "mod_cdrs_signed_data_class")
