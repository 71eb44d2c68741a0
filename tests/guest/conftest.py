from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import Connector
from tests.factories import ChargerFactory, PropertyFactory


def make_online(charger, statuses=("Available",)):
    """Mark the charger connected and give it ports 1..n with these statuses (0 = Available)."""
    charger.connection_id = "test-conn"
    charger.last_seen_at = timezone.now()
    charger.save(update_fields=["connection_id", "last_seen_at"])
    Connector.objects.update_or_create(
        charger=charger, connector_id=0, defaults={"status": "Available"}
    )
    for n, status in enumerate(statuses, start=1):
        Connector.objects.update_or_create(
            charger=charger, connector_id=n, defaults={"status": status}
        )
    return charger


@pytest.fixture
def site(db):
    return PropertyFactory(name="Harbour Hotel", currency="EUR", timezone="Europe/Amsterdam")


@pytest.fixture
def guest_charger(site):
    return make_online(ChargerFactory(property=site, station_id="HB-Lot-01", name="Lot A"))


@pytest.fixture
def rate(site):
    from billing.models import Rate

    return Rate.objects.create(
        property=site,
        charger=None,
        valid_from=timezone.now() - timedelta(days=1),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.40"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=10,
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
