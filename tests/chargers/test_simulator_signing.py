"""The simulator's signing meter: OCMF records that verify with the meter's public key, and the
places OCPP 1.6 and 2.0.1 carry them (OCA "Signed Meter Values in OCPP" v1.0)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargers.management.ocmf_meter import (
    SigningMeter,
    change_one_digit,
    generate_key,
    oca_public_key,
    public_key_hex,
)
from chargers.management.simulator import SimulatedCharger, SimulatedCharger201

WHEN = datetime(2026, 11, 24, 16, 0, 0, 123000, tzinfo=UTC)


def _verify(record: str, key_hex: str) -> None:
    header, payload, signature = record.split("|")
    assert header == "OCMF"
    section = json.loads(signature)
    assert section["SA"] == "ECDSA-secp256r1-SHA256"
    public = serialization.load_der_public_key(bytes.fromhex(key_hex))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(bytes.fromhex(section["SD"]), payload.encode(), ec.ECDSA(hashes.SHA256()))


def test_a_signed_reading_verifies_with_the_meters_public_key():
    key = generate_key()
    meter = SigningMeter(key, serial="MTR-1")
    record = meter.sign(wh=123_456, tx="B", when=WHEN, id_tag="CARD-1")
    _verify(record, public_key_hex(key))
    payload = record.split("|")[1]
    assert '"RV":123.456,' in payload  # decimals kept as written
    data = json.loads(payload)
    assert data["MS"] == "MTR-1" and data["PG"] == "T1" and data["ID"] == "CARD-1"
    assert data["RD"][0] == {
        "TM": "2026-11-24T16:00:00,123+0000 S",
        "TX": "B",
        "RV": 123.456,
        "RI": "01-00:01.08.00*FF",
        "RU": "kWh",
        "RT": "AC",
        "EF": "",
        "ST": "G",
    }
    assert json.loads(meter.sign(wh=123_999, tx="E", when=WHEN).split("|")[1])["PG"] == "T2"


def test_one_changed_digit_breaks_the_signature():
    key = generate_key()
    record = SigningMeter(key).sign(wh=10_009, tx="E", when=WHEN)
    changed = change_one_digit(record)
    assert '"RV":10.000,' in changed.split("|")[1]
    with pytest.raises(InvalidSignature):
        _verify(changed, public_key_hex(key))


def test_the_oca_public_key_field_names_the_printed_key():
    key = generate_key()
    text = base64.b64decode(oca_public_key(key)).decode()
    assert text == f"oca:base16:asn1:{public_key_hex(key)}"


def test_16_stop_carries_signed_start_and_end_as_signed_data():
    key = generate_key()
    charger = SimulatedCharger("ws://unused", "CP-S1", signing_key=key)
    charger.state[1].meter_wh = 5_000
    charger._sign_reading(1, "B", "CARD-1")
    charger.state[1].meter_wh = 7_250
    data = charger._signed_stop_data(1)
    sampled = data[0]["sampledValue"]
    assert [s["context"] for s in sampled] == ["Transaction.Begin", "Transaction.End"]
    assert all(s["format"] == "SignedData" for s in sampled)
    value = json.loads(sampled[1]["value"])
    assert value["encodingMethod"] == "OCMF" and value["signingMethod"] == ""
    record = base64.b64decode(value["signedMeterData"]).decode()
    _verify(record, public_key_hex(key))
    assert json.loads(record.split("|")[1])["RD"][0]["RV"] == 7.25


def test_201_ended_carries_signed_end_and_start():
    key = generate_key()
    charger = SimulatedCharger201("ws://unused", "CP-S2", signing_key=key)
    connector = charger.state[1]
    connector.meter_wh, connector.id_tag = 1_000, "CARD-2"
    started = charger._meter(connector, "Transaction.Begin")
    charger._sign_201(1, "Started", started)
    assert started[0]["sampledValue"][0]["signedMeterValue"]["encodingMethod"] == "OCMF"
    connector.meter_wh = 4_000
    ended = charger._meter(connector, "Transaction.End")
    charger._sign_201(1, "Ended", ended)
    end_value = ended[0]["sampledValue"][0]
    begin_value = ended[1]["sampledValue"][0]
    assert (end_value["context"], begin_value["context"]) == (
        "Transaction.End",
        "Transaction.Begin",
    )
    assert begin_value["value"] == 1_000
    for value in (end_value, begin_value):
        record = base64.b64decode(value["signedMeterValue"]["signedMeterData"]).decode()
        _verify(record, public_key_hex(key))


def test_a_tampering_meter_changes_the_signed_end():
    key = generate_key()
    charger = SimulatedCharger("ws://unused", "CP-S3", signing_key=key, tamper_signed_end=True)
    charger._sign_reading(1, "B")
    record = charger._sign_reading(1, "E")
    assert record is not None
    with pytest.raises(InvalidSignature):
        _verify(record, public_key_hex(key))
