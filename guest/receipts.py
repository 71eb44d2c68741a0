"""What a receipt shows: line items from billing, times in the property's zone, the payment."""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.utils import timezone

from backoffice.providers import Provider
from billing import price_shown
from billing.models import Rate
from chargers.models import ChargingSession
from chargers.ocpp.energy import kwh
from metering.display import signed_meter_values
from stays.models import Reservation
from stays.selectors import reservation_access

from . import payments
from .formatting import money, unit_price
from .models import GuestSession

logger = logging.getLogger(__name__)


class ReceiptBuyer(Protocol):
    """(company name, VAT ID) of the business driver whose session this guest session is, or
    ("", "") for anyone else."""

    def __call__(self, *, guest_session_id: int) -> tuple[str, str]: ...


# A business driver's details on the receipt (issue 51 item 5). Driver accounts sit above this
# app, so they provide the answer (registered in drivers.apps).
receipt_buyer: Provider[ReceiptBuyer] = Provider("receipt buyer")


def _tz(gs: GuestSession) -> zoneinfo.ZoneInfo:
    prop = gs.charger.property
    if prop is None:  # a charger placed at no property: UTC, as a zone that does not load
        return zoneinfo.ZoneInfo("UTC")
    try:
        return zoneinfo.ZoneInfo(prop.timezone)
    except Exception:
        return zoneinfo.ZoneInfo("UTC")


def included_stay(gs: GuestSession) -> Reservation | None:
    """Return the reservation when the session was started with its code and charging is included."""
    token = gs.token
    if gs.payment_id or token is None or token.reservation_id is None:
        return None
    reservation = Reservation.objects.select_related("property", "unit").get(
        pk=token.reservation_id
    )
    return reservation if reservation_access(reservation).charging_included else None


def _price_lines(terms: dict, currency: str) -> list[str]:
    """The price's parts in the words of the guest page."""
    lines = []
    if Decimal(terms.get("connection_fee") or 0):
        lines.append(
            f"Connection fee {currency} {money(terms['connection_fee'], currency)} once per session"
        )
    lines.append(
        f"Energy {currency} {unit_price(terms.get('energy_price_per_kwh') or 0, currency)} / kWh"
    )
    if Decimal(terms.get("time_price_per_hour") or 0):
        lines.append(
            f"Time plugged in {currency} {unit_price(terms['time_price_per_hour'], currency)} / hour"
        )
    if Decimal(terms.get("idle_fee_per_minute") or 0):
        idle = f"Idle fee {currency} {unit_price(terms['idle_fee_per_minute'], currency)} / min"
        if terms.get("idle_grace_minutes"):
            idle += f" after {terms['idle_grace_minutes']} free minutes"
        if terms.get("idle_fee_cap") is not None:
            idle += f", at most {currency} {money(terms['idle_fee_cap'], currency)}"
        lines.append(idle)
    percent = Decimal(terms.get("tax_percent") or 0)
    if percent:
        mode = "included in prices" if terms.get("prices_include_tax") else "added on top"
        lines.append(f"Tax {percent.normalize():f} %, {mode}")
    return lines


def price_version_context(gs: GuestSession, tz: zoneinfo.ZoneInfo | None = None) -> dict | None:
    """The price this session is billed with (issue 56 item 5): the one shown before the start,
    when it was shown and since when it applied, for the session page and the receipt."""
    shown = payments.price_for_guest(gs.pk, gs.charging_session)
    if shown is None:
        return None
    tz = tz or _tz(gs)
    return {
        "source": shown.source,
        "shown": shown.source != "start",
        "shown_at": timezone.localtime(shown.shown_at, tz),
        "since": timezone.localtime(shown.rate_valid_from, tz),
        "lines": _price_lines(shown.terms, shown.currency),
    }


def session_cost_for_charger(session_id: int) -> dict | None:
    """Answer a 2.0.1 charger's totalCost and CostUpdated (chargers.devices.costs.running_cost):
    the receipt's amount so far, tax included; 0 for a stay that includes charging (the guest
    pays nothing); None when no rate prices the session (the cost is not known)."""
    session = (
        ChargingSession.objects.select_related("charger", "charger__property")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        return None
    gs = GuestSession.objects.select_related("token").filter(charging_session_id=session_id).first()
    final = session.stopped_at is not None
    if gs is not None and included_stay(gs) is not None:
        prop = session.charger.property
        currency = prop.currency if prop is not None else ""
        return {"total": Decimal("0"), "currency": currency or "EUR", "final": final}
    cost = payments.session_cost(session)
    if not cost.lines:
        return None  # no rate: nothing is charged and the amount is not known
    return {"total": cost.total, "currency": cost.currency, "final": cost.final}


def sessions_priced_for_charger(session_ids: list[int]) -> list[bool]:
    """Answer chargers.devices.costs.sessions_priced: for each session, whether a rate was in
    force where and when it started (the one the receipt prices it with, `payments.billed_rate`)
    or its stay includes charging. One query per kind for all of them: the rate in force is
    looked up one by one only for a session without a price version at a location that has a
    price at all (a version is stored at every start since issue 56)."""
    sessions = {
        session.pk: session
        for session in ChargingSession.objects.select_related(
            "charger__property", "price_shown__rate"
        ).filter(pk__in=session_ids)
    }
    locations_with_prices = set(
        Rate.objects.filter(
            property_id__in={s.charger.property_id for s in sessions.values()}
        ).values_list("property_id", flat=True)
    )
    priced = {
        pk
        for pk, session in sessions.items()
        if (
            session.charger.property_id in locations_with_prices
            or price_shown.price_version(session) is not None
        )
        and payments.billed_rate(session) is not None
    }
    first_guest_sessions: dict[int, GuestSession] = {}
    for gs in GuestSession.objects.select_related("token").filter(
        charging_session_id__in=set(sessions) - priced
    ):
        if gs.charging_session_id is not None:
            first_guest_sessions.setdefault(gs.charging_session_id, gs)
    priced |= {pk for pk, gs in first_guest_sessions.items() if included_stay(gs) is not None}
    return [pk in priced for pk in session_ids]


# What a stay guest's charger shows instead of a rate: the stay includes the charging.
STAY_TARIFF_TEXT = "Charging is included in your stay"


def session_tariff_for_charger(session_id: int) -> str | None:
    """Answer chargers.devices.costs.session_tariff: the tariff the receipt prices the session
    with (its price version), or that the stay includes it; None when nothing prices it."""
    session = (
        ChargingSession.objects.select_related("charger__property").filter(pk=session_id).first()
    )
    if session is None:
        return None
    gs = GuestSession.objects.select_related("token").filter(charging_session_id=session_id).first()
    if gs is not None and included_stay(gs) is not None:
        return STAY_TARIFF_TEXT
    return payments.billed_tariff_text(session)


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
    stay = included_stay(gs)
    if stay is not None:
        cost = None
    receipt = None
    if session is not None and cost is not None and cost.lines:
        # Numbered in the seller's series once there is something sold (billing.receipts).
        try:
            company, vat_id = receipt_buyer.call(guest_session_id=gs.pk)
            receipt = payments.receipt_issue(session.pk, buyer_company=company, buyer_vat_id=vat_id)
        except Exception:  # the page keeps working; the number comes on the next visit
            logger.warning("No receipt number for guest session %s", gs.pk, exc_info=True)
    energy_kwh = kwh(session.energy_wh) if session is not None else None
    started_at = session.started_at if session else gs.started_at
    stopped_at = session.stopped_at if session else gs.finished_at
    no_reading = session is not None and session.no_reading
    issued = payments.receipt_issued_facts(receipt)
    if issued is not None:  # a receipt never changes after it was issued (billing.receipts)
        cost, started_at, stopped_at = issued.cost, issued.started_at, issued.stopped_at
        energy_kwh, no_reading = kwh(issued.energy_wh), issued.no_reading

    def local(value: datetime | None) -> datetime | None:
        return timezone.localtime(value, tz) if value else None

    return {
        "gs": gs,
        "charger": gs.charger,
        "property": gs.charger.property,
        "tz_name": str(tz),
        "started_at": local(started_at),
        "stopped_at": local(stopped_at),
        "energy_kwh": energy_kwh,
        "no_reading": no_reading,
        # What the meter signed (OCMF): "Signed by the meter: verified" and the transparency file.
        "signature": signed_meter_values(session) if session is not None else None,
        "cost": cost,
        "stay": stay,
        "price_version": price_version_context(gs, tz) if stay is None else None,
        "payment": payments.payment_summary(gs.payment_id),
        "receipt": receipt,
        "issued_at": local(receipt.issued_at) if receipt is not None else None,
    }
