"""Issue 46 item 2: where a session's signed start and end verify, the energy shown is the signed
energy (signed end - signed start), the same number billing prices, on every surface: the
session API and page, the receipt, the statement, the CDR's energy and the assistant's facts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing.services import session_price
from chargers.models import ChargingSession
from guest.models import GuestSession
from guest.receipts import receipt_context
from metering import services as metering
from support.assistant.diagnosis import Diagnosis, Viewer, session_facts
from tests.billing.helpers import unit_rate
from tests.metering.signing import Meter, signed_data_16
from tests.metering.test_billing_follows_signature import T0, T1, sample

pytestmark = pytest.mark.django_db(transaction=True)


def _signed_session(charger, meter: Meter) -> ChargingSession:
    # Measured (unsigned) meterStart/meterStop: 1000 -> 8800 Wh, 7.800 kWh; signed 1.000 -> 8.745.
    start = meter.ocmf("B", "1.000", T0, pagination=31)
    end = meter.ocmf("E", "8.745", T1, pagination=32)
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=464646,
        id_tag="GUEST",
        started_at=T0,
        stopped_at=T1,
        meter_start_wh=1000,
        meter_stop_wh=8800,
        status="completed",
        received_stop_at=timezone.now(),
        transaction_data=[
            {
                "timestamp": T1.isoformat(),
                "sampledValue": [
                    sample(signed_data_16(meter, start), "Transaction.Begin"),
                    sample(signed_data_16(meter, end), "Transaction.End"),
                ],
            }
        ],
    )


def test_a_verified_signed_session_shows_the_signed_energy_everywhere(charger, prop, host):
    unit_rate(prop)
    meter = Meter()
    metering.meter_key_put(
        charger=charger, meter_serial=meter.serial, public_key=meter.public_key_hex
    )
    session = _signed_session(charger, meter)
    charge = session_price(session_id=session.pk)
    # The statement's energy column and the CDR's total_energy are the priced energy.
    assert charge is not None and charge.energy_wh == Decimal(7745)

    session.refresh_from_db()
    assert session.energy_wh == Decimal(7745)
    web = Client()
    web.force_login(host)
    assert web.get(f"/api/v1/sessions/{session.pk}/").json()["energy_kwh"] == "7.745"
    page = web.get(f"/sessions/{session.pk}/").content.decode()
    assert "7.745 kWh" in page and "7.800" not in page

    guest = GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.FINISHED,
        charging_session=session,
    )
    assert receipt_context(guest)["energy_kwh"] == Decimal("7.745")

    diagnosis = Diagnosis()
    session_facts(session, Viewer(host, None), timezone.now(), diagnosis)
    assert any("delivered 7.745 kWh" in fact for fact in diagnosis.facts), diagnosis.facts


def test_a_signature_that_does_not_verify_leaves_the_measured_energy(charger, prop):
    unit_rate(prop)
    meter = Meter()
    session = _signed_session(charger, meter)  # no key registered: unknown_key, not verified
    metering.session_signed_ingest(session_id=session.pk)
    session.refresh_from_db()
    assert session.signed_energy_wh is None and session.energy_wh == Decimal(7800)
