"""metering.ocmf: reading and verifying OCMF, with real ECDSA keys made here (no database)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from metering import ocmf
from tests.metering.signing import Meter, signed_data_16, signed_meter_value_201, tamper

AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def meter() -> Meter:
    return Meter()


def check(text: str, key: bytes | None) -> ocmf.VerificationResult:
    try:
        reading = ocmf.parse(ocmf.unwrap(text).ocmf)
    except ocmf.Malformed as exc:
        return ocmf.VerificationResult(ocmf.Status.MALFORMED, str(exc))
    return ocmf.verify(reading, key)


def test_a_signed_reading_is_read_whole(meter: Meter) -> None:
    reading = ocmf.parse(meter.ocmf("E", "12.3456", AT, pagination=7))
    assert reading.meter_serial == meter.serial
    assert reading.pagination == "T7" and reading.pagination_number == 7
    assert reading.signing_method == "ECDSA-secp256r1-SHA256"
    (value,) = reading.values
    assert (value.type, value.unit, value.status, value.time) == ("E", "kWh", "G", AT)
    assert str(value.value_wh) == "12345.6000"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("as signed", ocmf.Status.VERIFIED),
        ("one digit of the reading changed", ocmf.Status.INVALID_SIGNATURE),
        ("the pagination changed", ocmf.Status.INVALID_SIGNATURE),
        ("another meter's key", ocmf.Status.INVALID_SIGNATURE),
        ("no key", ocmf.Status.UNKNOWN_KEY),
        ("not OCMF", ocmf.Status.MALFORMED),
        ("payload not JSON", ocmf.Status.MALFORMED),
        ("signature not hex", ocmf.Status.MALFORMED),
        ("no readings", ocmf.Status.MALFORMED),
        ("unknown signing method", ocmf.Status.MALFORMED),
    ],
)
def test_verification_table(meter: Meter, case: str, expected: ocmf.Status) -> None:
    text = meter.ocmf("E", "12.345", AT, pagination=8)
    key: bytes | None = meter.public_key_der
    if case == "one digit of the reading changed":
        text = tamper(text, '"RV":12.345', '"RV":12.346')
    elif case == "the pagination changed":
        text = tamper(text, '"PG":"T8"', '"PG":"T9"')
    elif case == "another meter's key":
        key = Meter().public_key_der
    elif case == "no key":
        key = None
    elif case == "not OCMF":
        text = "12.345"
    elif case == "payload not JSON":
        text = "OCMF|{not json|" + text.split("|")[2]
    elif case == "signature not hex":
        text = text.split("|")[0] + "|" + text.split("|")[1] + '|{"SD":"zz"}'
    elif case == "no readings":
        text = meter.sign('{"MS":"x","RD":[]}')
    elif case == "unknown signing method":
        text = text.replace("ECDSA-secp256r1-SHA256", "RSA-2048-SHA256")
    assert check(text, key).status == expected, check(text, key)


def test_a_secp384r1_meter_verifies() -> None:
    meter = Meter(curve=ec.SECP384R1(), signing_method="ECDSA-secp384r1-SHA256")
    text = meter.ocmf("B", "1", AT, pagination=1)
    assert check(text, ocmf.load_public_key(meter.public_key_hex)).ok
    # A P-256 key cannot have signed an ECDSA-secp384r1 reading.
    assert check(text, Meter().public_key_der).status == ocmf.Status.INVALID_SIGNATURE


def test_the_wrappings_ocpp_uses_are_all_read(meter: Meter) -> None:
    text = meter.ocmf("B", "1.5", AT, pagination=2)
    for wrapped in (
        text,  # plain OCMF (older 1.6 chargers)
        signed_data_16(meter, text),  # 1.6 SignedData: SignedMeterValueType as JSON text
        signed_meter_value_201(meter, text),  # 2.0.1 signedMeterValue object
        base64.b64encode(text.encode()).decode(),
        text.encode().hex(),
    ):
        assert ocmf.unwrap(wrapped).ocmf == text
    sent = ocmf.unwrap(signed_meter_value_201(meter, text))
    assert ocmf.load_public_key(sent.public_key) == meter.public_key_der


def test_keys_are_read_in_every_form_a_host_may_paste(meter: Meter) -> None:
    der = meter.public_key_der
    assert ocmf.load_public_key(meter.public_key_hex) == der
    assert ocmf.load_public_key(meter.public_key_hex.upper()) == der
    assert ocmf.load_public_key(meter.public_key_pem) == der
    assert ocmf.load_public_key(base64.b64encode(der).decode()) == der
    assert ocmf.load_public_key(f"oca:base16:asn1:{meter.public_key_hex}") == der
    assert ocmf.load_public_key(meter.public_key_oca) == der
    for bad in (
        "",
        "not a key",
        "abcd",
        "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----",
    ):
        with pytest.raises(ValueError):
            ocmf.load_public_key(bad)


def test_a_non_ec_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_der = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="elliptic-curve"):
        ocmf.load_public_key(rsa_der.hex())


def test_one_container_with_begin_and_end(meter: Meter) -> None:
    text = meter.sign(
        meter.payload([("B", "1.000", AT), ("E", "9.500", AT + timedelta(hours=1))], pagination=4)
    )
    reading = ocmf.parse(text)
    begin, end = reading.value_of("B"), reading.value_of("E")
    assert begin is not None and end is not None
    assert (begin.value_wh, end.value_wh) == (1000, 9500)
    assert ocmf.check_pair(reading, reading) == ""


@pytest.mark.parametrize(
    "case, why",
    [
        ("in order", ""),
        ("end counter before start", "pagination"),
        ("same counter", "pagination"),
        ("end older than start", "older"),
        ("register goes back", "below"),
        ("another meter", "different meters"),
    ],
)
def test_start_and_end_belong_together(meter: Meter, case: str, why: str) -> None:
    start_pg, end_pg, end_at, end_kwh, end_meter = 5, 6, AT + timedelta(hours=1), "9", meter
    if case == "end counter before start":
        end_pg = 4
    elif case == "same counter":
        end_pg = 5
    elif case == "end older than start":
        end_at = AT - timedelta(minutes=1)
    elif case == "register goes back":
        end_kwh = "0.5"
    elif case == "another meter":
        end_meter = Meter(serial="OTHER-1")
    start = ocmf.parse(meter.ocmf("B", "1", AT, pagination=start_pg))
    end = ocmf.parse(end_meter.ocmf("E", end_kwh, end_at, pagination=end_pg))
    assert why in ocmf.check_pair(start, end) and (why or ocmf.check_pair(start, end) == "")


@pytest.mark.parametrize(
    "case, status",
    [
        ("good", None),
        ("unit is not energy", ocmf.Status.MALFORMED),
        ("meter says manipulated", ocmf.Status.MALFORMED),
        ("serial is not the registered one", ocmf.Status.UNKNOWN_KEY),
        ("start before the session", ocmf.Status.MALFORMED),
        ("end after the stop", ocmf.Status.MALFORMED),
    ],
)
def test_a_reading_is_checked_against_the_session(
    meter: Meter, case: str, status: ocmf.Status | None
) -> None:
    facts = ocmf.SessionFacts(
        started_at=AT, stopped_at=AT + timedelta(hours=1), meter_serial=meter.serial
    )
    nature, kind, at, options = "end", "E", AT + timedelta(minutes=30), {}
    if case == "unit is not energy":
        options = {"unit": "mOhm"}
    elif case == "meter says manipulated":
        options = {"status": "M"}
    elif case == "serial is not the registered one":
        facts = ocmf.SessionFacts(started_at=AT, meter_serial="ANOTHER")
    elif case == "start before the session":
        nature, kind, at = "start", "B", AT - timedelta(hours=2)
    elif case == "end after the stop":
        at = AT + timedelta(hours=3)
    reading = ocmf.parse(meter.ocmf(kind, "3", at, pagination=1, **options))
    result = ocmf.check_value(reading, reading.values[0], facts, nature=nature)
    assert (result.status if result else None) == status


def test_a_key_on_a_curve_ocmf_does_not_sign_with_is_refused() -> None:
    p521 = Meter(curve=ec.SECP521R1())
    der = ocmf.load_public_key(p521.public_key_hex)  # readable ...
    with pytest.raises(ValueError, match="curve"):
        ocmf.signing_method_for(der)  # ... but no OCMF signing method
