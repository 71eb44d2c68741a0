"""Whether anything prices a session, for a 2.0.1 charger's cost display (chargers.devices.costs):
asked for a fleet's transactions at once, each answered as its receipt prices it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import PriceShown, Rate
from billing.price_shown import price_at_start
from chargers.devices import costs
from chargers.models import ChargingSession
from tests.chargers.v201.test_cost import _stay_guest
from tests.factories import ChargerFactory, PropertyFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _session(charger, transaction_id: int, started_at=START) -> ChargingSession:
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=transaction_id,  # one session per connector
        transaction_id=transaction_id,
        id_tag="04A1B2C3",
        started_at=started_at,
        received_start_at=started_at,
        meter_start_wh=0,
    )


def _rate(prop, valid_from) -> Rate:
    return Rate.objects.create(
        property=prop,
        valid_from=valid_from,
        energy_price_per_kwh=Decimal("0.40"),
        tax_percent=Decimal("19"),
    )


def test_each_session_is_answered_as_its_receipt_prices_it():
    priced_site, free_site = PropertyFactory(), PropertyFactory()
    _rate(priced_site, START - timedelta(days=30))
    charger = ChargerFactory(property=priced_site)
    free_charger = ChargerFactory(property=free_site)
    later_site = PropertyFactory()
    _rate(later_site, START + timedelta(days=1))  # a price from after the session's start
    later_charger = ChargerFactory(property=later_site)

    versioned = _session(charger, 1)
    price_at_start(session_id=versioned.pk)  # its price version, stored at its start
    assert PriceShown.objects.filter(session=versioned).exists()
    unversioned = _session(charger, 2)  # from before versions were stored: the rate in force
    free = _session(free_charger, 3)
    too_early = _session(later_charger, 4)
    stay = _session(free_charger, 5)
    gs = _stay_guest(free_charger, free_site)  # a stay that includes charging
    gs.charging_session = stay
    gs.save()

    ids = [free.pk, versioned.pk, too_early.pk, stay.pk, unversioned.pk, 999_999]
    assert costs.sessions_priced.call(ids) == [False, True, False, True, True, False]
    # The plans of a batch keep each charger's display and each session's answer together.
    plans = costs.plans_of([(free_charger.pk, free.pk), (charger.pk, versioned.pk)])
    assert [plan.priced for plan in plans] == [False, True]
