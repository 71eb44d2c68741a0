"""An alert's "this month" is the month at the charger's location: in California the UTC month
begins at 16:00 (17:00 in summer) on the last day of the month before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chargers.models import Connector
from reliability.models import Alert, AlertRule, PortEvent
from reliability.services import alerts
from tests.factories import ChargerFactory, PropertyFactory

pytestmark = pytest.mark.django_db

# 19:00 on 30 November in California.
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_an_evening_fault_on_the_last_day_of_the_month_is_not_a_month_below_target():
    prop = PropertyFactory(timezone="America/Los_Angeles")
    charger = ChargerFactory(property=prop, station_id="CP-LA-1")
    Connector.objects.create(charger=charger, connector_id=1, status="Faulted")
    PortEvent.objects.create(
        charger=charger,
        connector_id=1,
        kind="status",
        at=datetime(2026, 11, 30, 20, 0, tzinfo=UTC),  # noon in California
        status="Faulted",
        error_code="GroundFailure",
    )
    AlertRule.objects.create(
        organization=prop.organization, kind="uptime_below", threshold=97, after_s=60
    )
    alerts.evaluate(now=NOW)
    # Seven hours down in California's November (99.0 % up) is above the target. Before, the
    # month was UTC's December, three hours old and all of them down: "0.00 % this month".
    assert not Alert.objects.filter(kind="uptime_below").exists()
    facts = alerts.charger_facts(charger, NOW)
    assert "Port 1 uptime this month: 99.02 %." in facts
