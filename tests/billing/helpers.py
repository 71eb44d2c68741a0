"""Shared builders for billing tests."""

import itertools
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.gateways import get_gateway
from billing.models import Rate
from billing.services import guest_payment_record, guest_payment_settle
from chargers.models import ChargingSession

_tx = itertools.count(10_000)
T0 = timezone.now().replace(microsecond=0) - timedelta(days=3)


def unit_rate(prop, **kw) -> Rate:
    """1.00 per kWh, nothing else: a session of N*10 Wh costs N cents."""
    values = dict(
        property=prop, valid_from=T0 - timedelta(days=365), energy_price_per_kwh=Decimal("1.00")
    )
    values.update(kw)
    return Rate.objects.create(**values)


def finished_session(
    charger, *, wh: int, start=None, minutes: int = 30, id_tag: str = "GUEST"
) -> ChargingSession:
    start = start or T0 + timedelta(minutes=next(_tx) % 1000)
    tx = next(_tx)
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=tx,
        id_tag=id_tag,
        started_at=start,
        stopped_at=start + timedelta(minutes=minutes),
        meter_start_wh=0,
        meter_stop_wh=wh,
        status="completed",
        received_stop_at=timezone.now(),
    )


def paid_session(
    charger, *, wh: int, hold: Decimal = Decimal("100.00"), email: str = "guest@example.com", **kw
):
    session = finished_session(charger, wh=wh, **kw)
    result = get_gateway().authorize(
        hold, charger.property.currency, "pm_card_visa", f"hold-{session.pk}"
    )
    assert result.ok
    payment = guest_payment_record(
        session_id=session.pk,
        organization_id=charger.property.organization_id,
        amount_held=hold,
        currency=charger.property.currency,
        reference=result.reference,
        email=email,
    )
    return session, guest_payment_settle(payment=payment, session=session)
