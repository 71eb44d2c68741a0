"""A charger's wrong clock never makes a negative or an enormous charge. Time is priced on the
charger's clock (its meter readings and status changes carry the same one) unless that clock
was evidently wrong: a start stamped 2000-01-01 (a clock never set), a stop before the start,
a stop stamped later than it reached us. Then on ours: when the start and the stop reached us.
The receipt's function and a page's batch price it alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.models import Rate
from billing.services import session_cost
from billing.session_costs import sessions_cost
from chargers.models import ChargingSession

pytestmark = pytest.mark.django_db

# When the start and the stop reached us: two hours.
RECEIVED_START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RECEIVED_STOP = RECEIVED_START + timedelta(hours=2)


@pytest.fixture
def rate(prop):
    return Rate.objects.create(
        property=prop,
        valid_from=datetime(1999, 1, 1, tzinfo=UTC),  # in force whatever the stamps say
        energy_price_per_kwh=Decimal("0.50"),
        time_price_per_hour=Decimal("2.00"),
    )


def session(
    charger, *, started_at, stopped_at, received=(RECEIVED_START, RECEIVED_STOP)
) -> ChargingSession:
    made = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=ChargingSession.objects.count() + 700,
        id_tag="04AAAA",
        started_at=started_at,
        stopped_at=stopped_at,
        meter_start_wh=0,
        meter_stop_wh=10000,
        status="completed",
        received_stop_at=received[1],
    )
    ChargingSession.objects.filter(pk=made.pk).update(received_start_at=received[0])
    return ChargingSession.objects.select_related("charger__property").get(pk=made.pk)


def charging_time(cost) -> Decimal:
    (line,) = [line for line in cost.lines if line["kind"] == "charging_time"]
    return line["quantity"]


@pytest.mark.parametrize(
    "started_at, stopped_at",
    [
        # The clock was never set at the start; synchronised by the stop.
        (datetime(2000, 1, 1, tzinfo=UTC), RECEIVED_STOP),
        # Set back an hour during the session: its stop is before its start.
        (RECEIVED_START, RECEIVED_START - timedelta(hours=1)),
        # A year ahead by the stop: a stop stamped long after it reached us.
        (RECEIVED_START, RECEIVED_STOP + timedelta(days=365)),
    ],
    ids=["never-set", "stop-before-start", "stop-from-the-future"],
)
def test_a_wrong_clock_is_priced_on_ours(rate, charger, started_at, stopped_at):
    wrong = session(charger, started_at=started_at, stopped_at=stopped_at)
    cost = session_cost(wrong)
    # 10 kWh x 0.50 + the 2 hours it took by our clock x 2.00: not 0, not 26 years of hours.
    assert charging_time(cost) == Decimal("2.0000")
    assert cost.total == Decimal("9.00")
    assert sessions_cost([wrong])[wrong.pk] == cost


def test_a_right_clock_keeps_its_own_span(rate, charger):
    """A session of 09:00 to 09:50 whose start and stop the charger queued while offline and
    sent at 10:55 and 11:00: its own 50 minutes count, not the 5 between the two messages."""
    queued = session(
        charger,
        started_at=RECEIVED_START,
        stopped_at=RECEIVED_START + timedelta(minutes=50),
        received=(RECEIVED_STOP - timedelta(minutes=5), RECEIVED_STOP),
    )
    assert charging_time(session_cost(queued)) == Decimal("0.8333")


def test_two_hours_across_the_autumn_change_are_two_hours(rate, charger, prop):
    """01:30 to 02:30 local on 25 October 2026 in Amsterdam is 2 hours: 02:00-03:00 ran twice."""
    amsterdam = ZoneInfo("Europe/Amsterdam")
    start = datetime(2026, 10, 25, 1, 30, tzinfo=amsterdam)
    stop = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=amsterdam)
    across = session(charger, started_at=start, stopped_at=stop, received=(start, stop))
    assert charging_time(session_cost(across)) == Decimal("2.0000")
