"""`ChargingSession.energy_sql()` is `energy_wh` in SQL for sums (the dashboard's energy, a stay's
included energy used): a session whose 1.6 meterStop is below its meterStart (stored as sent)
counts 0, as `energy_wh` says, instead of taking energy off the sum; on PostgreSQL and SQLite."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from chargers.models import ChargingSession
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def _session(charger, tx: int, start: str | None, stop: str | None, signed: str | None = None):
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=tx,
        started_at=timezone.now(),
        meter_start_wh=None if start is None else Decimal(start),
        meter_stop_wh=None if stop is None else Decimal(stop),
        signed_energy_wh=None if signed is None else Decimal(signed),
        status=ChargingSession.Status.COMPLETED,
    )


def test_a_sum_of_energy_never_loses_what_a_backwards_meter_stop_would_take_off():
    charger = ChargerFactory()
    sessions = [
        _session(charger, 1, "100", "600.5"),  # 500.5 Wh
        _session(charger, 2, "1000", "400"),  # a meter that went backwards: 0 Wh
        _session(charger, 3, "0", "900", signed="250"),  # the verified signed energy
        _session(charger, 4, None, None),  # no reading: nothing to add
    ]
    assert [s.energy_wh for s in sessions] == [Decimal("500.5"), 0, Decimal(250), None]
    total = ChargingSession.objects.aggregate(wh=Sum(ChargingSession.energy_sql()))["wh"]
    assert Decimal(total) == Decimal("750.5")
