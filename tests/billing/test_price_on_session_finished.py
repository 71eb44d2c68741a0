"""Billing prices a session when chargers signals it finished (on commit), and a pricing
failure never breaks the charger's stop."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Rate, SessionCharge
from chargers.models import ChargingSession
from chargers.services import session_stop

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=3)


def _session(charger):
    return ChargingSession.objects.create(
        charger=charger, connector_id=1, transaction_id=4242, id_tag="X", started_at=T0, meter_start_wh=0,
    )


def test_stop_transaction_prices_the_session(charger, prop, django_capture_on_commit_callbacks):
    Rate.objects.create(property=prop, valid_from=T0 - timedelta(days=1), energy_price_per_kwh=Decimal("0.40"),
                        tax_percent=Decimal("0"))
    session = _session(charger)
    with django_capture_on_commit_callbacks(execute=True):
        session_stop(charger_id=charger.pk, transaction_id=4242, meter_stop=5000, stopped_at=T0 + timedelta(hours=1))
    charge = SessionCharge.objects.get(session=session)
    assert (charge.total, charge.energy_wh, charge.final) == (Decimal("2.00"), 5000, True)


def test_pricing_failure_does_not_break_the_stop(charger, prop, monkeypatch, django_capture_on_commit_callbacks):
    from billing import services

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "session_price", broken)
    session = _session(charger)
    with django_capture_on_commit_callbacks(execute=True):
        session_stop(charger_id=charger.pk, transaction_id=4242, meter_stop=5000, stopped_at=T0 + timedelta(hours=1))
    session.refresh_from_db()
    assert session.status == "completed"
    assert not SessionCharge.objects.exists()
