"""Signed meter values over OCPP 2.0.1: signedMeterValue (Base64 OCMF, the key in the OCA form)
in the Started and Ended TransactionEvents (OCA note 4.1), verified on arrival against the
registered key; on the appended path and the full refold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from chargers.models import ChargingSession
from chargers.sessions import rules
from metering import services
from metering.models import SignedReading
from metering.selectors import session_signature
from tests.chargers.v201.conftest import connect201, tx_event
from tests.metering.signing import Meter, signed_meter_value_201, tamper

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(autouse=True)
def _no_base_report(settings):
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False


@pytest.fixture(params=["appended", "full"])
def path(request, monkeypatch):
    if request.param == "full":
        monkeypatch.setattr(rules, "appendable", lambda steady, event, end_register_wh: False)
    return request.param


def signed_event(event_type: str, seq: int, at: datetime, wh: float, signed: dict, **kw) -> dict:
    event = tx_event(event_type, seq, timestamp=iso(at), **kw)
    context = "Transaction.Begin" if event_type == "Started" else "Transaction.End"
    event["meterValue"] = [
        {
            "timestamp": iso(at),
            "sampledValue": [
                {
                    "value": wh,
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                    "signedMeterValue": signed,
                }
            ],
        }
    ]
    return event


async def charge(meter: Meter, *, end_text: str | None = None, sent_key: Meter | None = None):
    client = await connect201()
    start = meter.ocmf("B", "2.000", T0, pagination=21)
    end = end_text or meter.ocmf("E", "7.250", T1, pagination=22)
    key_of = sent_key or meter
    await client.result(
        "TransactionEvent",
        signed_event(
            "Started", 0, T0, 2000, signed_meter_value_201(key_of, start), id_token="04A1B2C3"
        ),
    )
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    started = await SignedReading.objects.filter(session=session).acount()
    await client.result(
        "TransactionEvent",
        signed_event(
            "Ended", 1, T1, 7000, signed_meter_value_201(key_of, end), stopped_reason="Local"
        ),
    )
    await client.close()
    return await ChargingSession.objects.aget(pk=session.pk), started


@pytest.fixture
def meter(charger) -> Meter:
    meter = Meter()
    services.meter_key_put(
        charger=charger, meter_serial=meter.serial, public_key=meter.public_key_hex
    )
    return meter


async def test_signed_started_and_ended_verify(charger, token, meter, path):
    session, started = await charge(meter)
    assert started == 1  # the signed start was verified on arrival, before the Ended
    assert session.status == "completed"
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "verified", summary
    assert summary.energy_wh == Decimal(5250)  # 7.250 - 2.000 kWh, signed (not 7000 - 2000)
    assert summary.public_key == meter.public_key_hex


async def test_one_digit_changed_in_the_ended_reading_is_invalid(charger, token, meter, path):
    end = tamper(meter.ocmf("E", "7.250", T1, pagination=22), '"RV":7.25', '"RV":7.26')
    session, _ = await charge(meter, end_text=end)
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "invalid_signature"
    assert summary.energy_wh is None


async def test_a_sent_key_that_is_not_the_registered_one_is_refused(charger, token, meter):
    session, _ = await charge(meter, sent_key=Meter())
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "unknown_key"
    assert "not the one registered" in summary.reason


def meter_values_201(at: datetime, wh: float, signed: dict, context: str) -> dict:
    """A 2.0.1 MeterValues (names no transaction) with one signed energy reading on EVSE 1."""
    return {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": iso(at),
                "sampledValue": [
                    {
                        "value": wh,
                        "context": context,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                        "signedMeterValue": signed,
                    }
                ],
            }
        ],
    }


async def test_signed_values_of_a_meter_values_message_go_to_the_open_session(
    charger, token, meter, path
):
    """2.0.1 MeterValues names no transaction: its signed values belong to the session open on
    the EVSE at their time. A begin there is the start the Started lacked; a charging reading
    (C) is an intermediate one; all are verified like the rest."""
    client = await connect201()
    await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=iso(T0), id_token="04A1B2C3")
    )
    t_mid = T0 + timedelta(minutes=30)
    for at, kind, kwh, page, context in (
        (T0, "B", "2.000", 21, "Transaction.Begin"),
        (t_mid, "C", "4.500", 22, "Sample.Periodic"),
    ):
        text = meter.ocmf(kind, kwh, at, pagination=page)
        await client.result(
            "MeterValues",
            meter_values_201(at, float(kwh) * 1000, signed_meter_value_201(meter, text), context),
        )
    end = meter.ocmf("E", "7.250", T1, pagination=23)
    await client.result(
        "TransactionEvent",
        signed_event(
            "Ended", 1, T1, 7250, signed_meter_value_201(meter, end), stopped_reason="Local"
        ),
    )
    await client.close()
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    await sync_to_async(services.session_signed_ingest)(session_id=session.pk)
    rows = [r async for r in SignedReading.objects.filter(session=session).order_by("time")]
    assert [(r.nature, r.status) for r in rows] == [
        ("start", "verified"),
        ("intermediate", "verified"),
        ("end", "verified"),
    ]
    summary = await sync_to_async(session_signature)(session)
    assert summary is not None and summary.status == "verified", summary
    assert summary.energy_wh == Decimal(5250)


async def test_a_begin_in_meter_values_is_intermediate_when_the_started_has_one(
    charger, token, meter
):
    client = await connect201()
    start = meter.ocmf("B", "2.000", T0, pagination=21)
    await client.result(
        "TransactionEvent",
        signed_event(
            "Started", 0, T0, 2000, signed_meter_value_201(meter, start), id_token="04A1B2C3"
        ),
    )
    again = meter.ocmf("B", "2.100", T0 + timedelta(minutes=5), pagination=22)
    await client.result(
        "MeterValues",
        meter_values_201(
            T0 + timedelta(minutes=5), 2100, signed_meter_value_201(meter, again), "Sample.Periodic"
        ),
    )
    await client.close()
    session = await ChargingSession.objects.aget(ocpp_transaction_id="TX-1")
    rows = await sync_to_async(services.session_signed_ingest)(session_id=session.pk)
    assert sorted((r.nature, r.value_wh) for r in rows) == [
        ("intermediate", Decimal("2100.000")),
        ("start", Decimal("2000.000")),
    ]


async def test_signed_meter_values_with_no_open_session_stay_unattributed(charger, meter):
    client = await connect201()
    text = meter.ocmf("C", "1.000", T0, pagination=1)
    await client.result(
        "MeterValues",
        meter_values_201(T0, 1000, signed_meter_value_201(meter, text), "Sample.Periodic"),
    )
    await client.close()
    from chargers.models import SignedSample

    sample = await SignedSample.objects.aget(charger=charger)
    assert sample.transaction_id is None and sample.connector_id == 1


async def test_the_cdr_signed_data_of_a_201_session(charger, token, meter, path):
    """OCPI 2.2.1 CDR signed_data (mod_cdrs SignedData) from a 2.0.1 session: the OCMF records
    as the meter wrote them (decoded from the signedMeterValue's Base64), natures Start and End,
    the registered key."""
    import base64

    from metering.display import cdr_signed_records
    from roaming import mapping
    from tests.roaming import spec

    session, _ = await charge(meter)
    found = await sync_to_async(cdr_signed_records)(session)
    assert found is not None
    records, key_hex = found
    data = mapping.signed_data_object(
        mapping.ocmf_signed_data(records, public_key_der=bytes.fromhex(key_hex))
    )
    spec.check_object(data, "mod_cdrs.asciidoc", "mod_cdrs_signed_data_class")
    for value in data["signed_values"]:
        spec.check_object(value, "mod_cdrs.asciidoc", "mod_cdrs_signed_value_class")
    assert data["encoding_method"] == "OCMF"
    assert [v["nature"] for v in data["signed_values"]] == ["Start", "End"]
    stored = [
        r.raw
        async for r in SignedReading.objects.filter(session=session, status="verified").order_by(
            "time"
        )
    ]
    assert [v["plain_data"] for v in data["signed_values"]] == stored
    assert [base64.b64decode(v["signed_data"]).decode() for v in data["signed_values"]] == stored
    # As the meter signed them (ECDSA signatures differ each time: compare the signed payload).
    payloads = [r.rsplit("|", 1)[0] for r in stored]
    assert payloads == [
        meter.ocmf("B", "2.000", T0, pagination=21).rsplit("|", 1)[0],
        meter.ocmf("E", "7.250", T1, pagination=22).rsplit("|", 1)[0],
    ]
    assert base64.b64decode(data["public_key"]).hex().upper() == meter.public_key_hex.upper()
