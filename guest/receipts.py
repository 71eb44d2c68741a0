"""What a receipt shows: line items from billing, times in the property's zone, the payment."""

from __future__ import annotations

import logging
import zoneinfo

from django.utils import timezone

from chargers.sessions.energy import kwh
from metering.display import signed_meter_values
from stays.models import Reservation
from stays.selectors import reservation_access

from . import payments
from .models import GuestSession

logger = logging.getLogger(__name__)


def _tz(gs: GuestSession):
    try:
        return zoneinfo.ZoneInfo(gs.charger.property.timezone)
    except Exception:
        return zoneinfo.ZoneInfo("UTC")


def _included_stay(gs: GuestSession) -> Reservation | None:
    """Return the reservation when the session was started with its code and charging is included."""
    token = gs.token
    if gs.payment_id or token is None or token.reservation_id is None:
        return None
    reservation = Reservation.objects.select_related("property", "unit").get(
        pk=token.reservation_id
    )
    return reservation if reservation_access(reservation).charging_included else None


def receipt_context(gs: GuestSession) -> dict:
    """Return the receipt's data; only this guest's session, never the host's or others'."""
    tz = _tz(gs)
    session = gs.charging_session
    cost = None
    if session is not None and gs.state == GuestSession.State.FINISHED:
        try:
            cost = payments.session_cost(session)
        except Exception:  # billing unavailable: show the session, say the amount follows
            logger.warning("No cost for guest session %s", gs.pk, exc_info=True)
    # A stay that includes charging: nothing to pay, so no rate lines (the rate is the host's, not the guest's).
    stay = _included_stay(gs)
    if stay is not None:
        cost = None
    energy_kwh = kwh(session.energy_wh) if session is not None else None

    def local(value):
        return timezone.localtime(value, tz) if value else None

    return {
        "gs": gs,
        "charger": gs.charger,
        "property": gs.charger.property,
        "tz_name": str(tz),
        "started_at": local(session.started_at if session else gs.started_at),
        "stopped_at": local(session.stopped_at if session else gs.finished_at),
        "energy_kwh": energy_kwh,
        "no_reading": session is not None and session.no_reading,
        # What the meter signed (OCMF): "Signed by the meter: verified" and the transparency file.
        "signature": signed_meter_values(session) if session is not None else None,
        "cost": cost,
        "stay": stay,
        "payment": payments.payment_summary(gs.payment_id),
    }
