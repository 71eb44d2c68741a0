"""Signed values a charger may send that are no readable OCMF, or hold what PostgreSQL cannot
store: each is stored as a reading that does not verify, with its reason; the verification
(the task, the pricing, the CDR) never dies on it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.models import ChargingSession
from metering import ocmf
from metering.models import SignedReading
from metering.services import meter_key_put, session_signed_ingest
from tests.factories import ChargerFactory, PropertyFactory
from tests.metering.signing import Meter

pytestmark = pytest.mark.django_db

RD = '"RD":[{"TM":"2026-11-24T16:00:00,123+0000 S","TX":"E","RV":12.3,"RU":"kWh","ST":"G"}]'
SIG = '{"SD":"3045"}'
PAGINATION = "the pagination (PG) is not T or F followed by a counter of 1 to 19 digits"

HOSTILE = {
    # json.loads raised RecursionError
    "deep-payload": ("OCMF|" + "[" * 100_000 + "|{}", "not JSON"),
    "deep-wrapper": (
        json.dumps({"signedMeterData": '{"a":' + "[" * 5_000, "encodingMethod": "OCMF"}),
        "neither OCMF nor JSON",
    ),
    # Decimal multiplication overflowed
    "huge-exponent": ('OCMF|{"MS":"X",' + RD.replace("12.3", "1e999999999") + "}|" + SIG, "range"),
    # NUL and a lone surrogate from JSON escapes, and an SA longer than its column: DataError,
    # UnicodeEncodeError
    "nul-serial": ('OCMF|{"MS":"A\\u0000B",' + RD + "}|" + SIG, "A\\u0000B"),
    "nul-pagination": ('OCMF|{"MS":"X","PG":"T\\u0000",' + RD + "}|" + SIG, PAGINATION),
    # int() of more than 4,300 digits raised ValueError (Python's limit): a 500 in verification
    "huge-pagination": ('OCMF|{"MS":"X","PG":"T' + "9" * 5000 + '",' + RD + "}|" + SIG, PAGINATION),
    "nul-method": ('OCMF|{"MS":"X",' + RD + '}|{"SD":"3045","SA":"x\\u0000"}', "not supported"),
    "long-method": ('OCMF|{"MS":"X",' + RD + '}|{"SD":"3045","SA":"' + "x" * 500 + '"}', "x"),
    "surrogate-serial": ('OCMF|{"MS":"\\ud800",' + RD + "}|" + SIG, "\\ud800"),
}


def _session_with(value: str) -> ChargingSession:
    charger = ChargerFactory(property=PropertyFactory(), station_id="EICH-9")
    meter = Meter(serial="X")
    meter_key_put(charger=charger, meter_serial="X", public_key=meter.public_key_hex)
    started = timezone.now() - timedelta(hours=1)
    sampled = {"value": value, "format": "SignedData", "context": "Transaction.End", "unit": "Wh"}
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=1,
        id_tag="CARD-1",
        started_at=started,
        stopped_at=started + timedelta(minutes=30),
        meter_start_wh=0,
        meter_stop_wh=10,
        status="completed",
        transaction_data=[{"timestamp": started.isoformat(), "sampledValue": [sampled]}],
    )


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_signed_value_is_stored_as_not_verified_with_its_reason(name):
    value, said = HOSTILE[name]
    session = _session_with(value)
    [row] = session_signed_ingest(session_id=session.pk)
    assert row.status != ocmf.Status.VERIFIED and said in row.reason
    stored = SignedReading.objects.get(session=session)
    assert "\x00" not in stored.meter_serial + stored.pagination + stored.signing_method
    assert len(stored.signing_method) <= 50
    session.refresh_from_db()
    assert session.signed_energy_wh is None


def test_a_meter_time_past_year_9999_in_utc_is_no_time():
    # Stored, it could never be read back into a datetime.
    assert ocmf._time("9999-12-31T23:59:59-2359") is None
    assert ocmf._time("0001-01-01T00:00:00+2359") is None
    assert ocmf._time("2026-11-24T16:00:00,123+0000 S") is not None


def test_a_signed_end_with_a_huge_pagination_counter_fails_verification_in_words():
    """Correctly signed, so only the pagination check can refuse it: a counter of 5,000 digits
    (past Python's 4,300-digit int limit) is a clear failure, not a server error."""
    meter = Meter(serial="X")
    charger = ChargerFactory(property=PropertyFactory(), station_id="EICH-8")
    meter_key_put(charger=charger, meter_serial="X", public_key=meter.public_key_hex)
    at = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    start = meter.ocmf("B", "1.000", at, pagination=1)
    end = meter.sign(
        meter.payload([("E", "2.000", at + timedelta(minutes=30))], pagination="9" * 5000)
    )
    rows = [
        {
            "timestamp": at.isoformat(),
            "sampledValue": [
                {
                    "value": start,
                    "format": "SignedData",
                    "context": "Transaction.Begin",
                    "unit": "Wh",
                }
            ],
        },
        {
            "timestamp": (at + timedelta(minutes=30)).isoformat(),
            "sampledValue": [
                {"value": end, "format": "SignedData", "context": "Transaction.End", "unit": "Wh"}
            ],
        },
    ]
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=2,
        id_tag="CARD-1",
        started_at=at,
        stopped_at=at + timedelta(minutes=31),
        meter_start_wh=1000,
        meter_stop_wh=2000,
        status="completed",
        transaction_data=rows,
    )
    readings = session_signed_ingest(session_id=session.pk)
    huge = next(r for r in readings if r.nature == "end")
    assert huge.status == ocmf.Status.MALFORMED and huge.reason == PAGINATION
    session.refresh_from_db()
    assert session.signed_energy_wh is None
