"""The state a guest's session page shows, as one JSON-able snapshot (page render and websocket)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from backoffice.formatting import duration_text
from chargers.models import ChargingSession, Connector, MeterValue
from chargers.ocpp.energy import kwh as to_kwh
from chargers.ocpp.energy import wh_text

from .models import GuestSession
from .starts import start_timeout_s

logger = logging.getLogger(__name__)

# OCPP 1.6 ChargePointStatus in a guest's words.
STATUS_WORDS = {
    "Available": "Ready – plug in your car",
    "Preparing": "Preparing – waiting for your car",
    "Charging": "Charging",
    "SuspendedEV": "Paused by your car (it may be full)",
    "SuspendedEVSE": "Paused by the charger",
    "Finishing": "Finishing",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Fault – the charger reported a problem",
    # OCPP 2.0.1 says Occupied for a port in use, whether the car draws power or not: while the
    # guest's session runs, the guest reads it as charging (power and kWh show the rest).
    "Occupied": "Charging",
}


def _energy_wh(session: ChargingSession | None) -> int | None:
    if session is None:
        return None
    if session.energy_wh is not None:
        return int(session.energy_wh)
    if session.meter_stop_wh is not None:
        return int(session.meter_stop_wh) - int(session.meter_start_wh or 0)
    return None


def _port_taken(gs: GuestSession) -> bool:
    """Another session (the charger's own, or a card's) held the guest's port meanwhile."""
    from chargers.models import ChargingSession

    until = gs.finished_at or timezone.now()
    others = ChargingSession.objects.filter(
        charger_id=gs.charger_id, connector_id=gs.connector_id, started_at__lt=until
    )
    if gs.charging_session_id is not None:  # exclude(pk=None) excluded nothing either
        others = others.exclude(pk=gs.charging_session_id)
    return (
        others.exclude(id_tag=gs.id_tag)
        .filter(Q(stopped_at__isnull=True) | Q(stopped_at__gt=gs.created_at))
        .exists()
    )


def _captured(gs: GuestSession) -> Decimal | None:
    from billing.models import Payment

    if not gs.payment_id:
        return None
    payment = Payment.objects.filter(pk=gs.payment_id).only("amount_captured").first()
    return payment.amount_captured if payment else None


def finish_note(gs: GuestSession) -> str:
    """What happened when a session ended without energy (issue 35 item 15): say why, and that
    nothing was charged, instead of a bare "Finished" at 0.000 kWh."""
    if gs.state != GuestSession.State.FINISHED or (_energy_wh(gs.charging_session) or 0) > 0:
        return ""
    why = (
        "Another session was using this port, so no energy reached your car."
        if _port_taken(gs)
        else "No energy reached your car (it did not draw power, or the cable was unplugged)."
    )
    captured = _captured(gs)
    if captured is None or captured == 0:
        return f"{why} Nothing was charged: the hold on your card is released."
    return f"{why} See the receipt for what was charged."


def headline(gs: GuestSession, status_label: str, note: str) -> str:
    """The big line of the session page, the same words on load and on every live update."""
    if gs.state == GuestSession.State.CHARGING:
        return status_label or "Charging"
    if gs.state == GuestSession.State.FINISHED:
        return "Ended – no energy delivered" if note else "Finished – thank you!"
    words: dict[str, str] = {
        GuestSession.State.PENDING: "Paying…",
        GuestSession.State.STARTING: "Plug in your car",
        GuestSession.State.FAILED: "Charging did not start",
    }
    return words.get(gs.state, gs.get_state_display())


def parse_reading(text: str | None) -> tuple[Decimal | None, str]:
    """Return (value, unit) of a "123.4 Wh"-style reading from a connector event."""
    if not text:
        return None, ""
    number, _, unit = str(text).partition(" ")
    try:
        return Decimal(number), unit.strip()
    except InvalidOperation:
        return None, ""


def energy_kwh(
    register: Decimal | None, unit: str, meter_start_wh: Decimal | str | int | None
) -> Decimal | None:
    if register is None or meter_start_wh is None or meter_start_wh == "":
        return None
    wh = register.scaleb(3) if unit.lower() == "kwh" else register
    return max((wh - Decimal(meter_start_wh)) / 1000, Decimal(0)).quantize(Decimal("0.001"))


def power_kw(value: Decimal | None, unit: str) -> Decimal | None:
    if value is None:
        return None
    kw = value if unit.lower() == "kw" else value / 1000
    return kw.quantize(Decimal("0.1"))


def cost_so_far(gs: GuestSession) -> str | None:
    """What the guest's session costs so far ("1.23 EUR"), from the receipt's own function
    (payments.session_cost: the rate in force at the start, priced to the last reading). None
    before it starts, when no rate applies, and when the stay includes charging (nothing to pay,
    as on the receipt)."""
    from billing.money import round_money

    from . import payments
    from .receipts import included_stay

    session = gs.charging_session
    if session is None or included_stay(gs) is not None:
        return None
    try:
        cost = payments.session_cost(session)
    except Exception:  # the page keeps working; the receipt has the amount
        logger.warning("No live cost for guest session %s", gs.pk, exc_info=True)
        return None
    if not cost.lines:
        return None
    return f"{round_money(cost.total, cost.currency)} {cost.currency}"


def elapsed_s(session: ChargingSession | None) -> int | None:
    """Whole seconds the session has run (to its stop once stopped)."""
    if session is None:
        return None
    end = session.stopped_at or timezone.now()
    return max(int((end - session.started_at).total_seconds()), 0)


def snapshot(gs: GuestSession) -> dict:
    """Return the page state of this guest session only."""
    connector = Connector.objects.filter(
        charger_id=gs.charger_id, connector_id=gs.connector_id
    ).first()
    status = connector.status if connector else ""
    session = gs.charging_session
    kw = kwh = None
    if session is not None:
        latest: dict[str, MeterValue] = {}
        for mv in MeterValue.objects.filter(
            session=session,
            measurand__in=["Energy.Active.Import.Register", "Power.Active.Import"],
            phase="",
        ).order_by("-timestamp", "-id")[:6]:
            latest.setdefault(mv.measurand, mv)
        energy = latest.get("Energy.Active.Import.Register")
        power = latest.get("Power.Active.Import")
        if energy is not None:
            kwh = energy_kwh(energy.value, energy.unit or "Wh", session.meter_start_wh)
        if session.energy_wh is not None:
            kwh = to_kwh(session.energy_wh)
        if power is not None and session.status == "active":
            kw = power_kw(power.value, power.unit or "W")
    seconds_left = None
    if gs.state == GuestSession.State.STARTING and gs.start_requested_at:
        elapsed = (timezone.now() - gs.start_requested_at).total_seconds()
        seconds_left = max(int(start_timeout_s() - elapsed), 0)
    status_label = STATUS_WORDS.get(status, status)
    if gs.state in (GuestSession.State.FINISHED, GuestSession.State.FAILED):
        # The port is the next guest's now: "Ready – plug in your car" would read as an invitation.
        status_label = "Session ended"
    note = finish_note(gs)
    allowance = None
    if session is not None and session.status == "active":
        from power.selectors import session_allowance

        allowance = session_allowance(session.pk)
    return {
        "headline": headline(gs, status_label, note),
        "note": note,
        "state": gs.state,
        "state_label": gs.get_state_display(),
        "status": status,
        "status_label": status_label,
        "kw": str(kw) if kw is not None else None,
        "kwh": str(kwh) if kwh is not None else None,
        # Cost so far and time (issue 51 item 5): the receipt's price of what was measured.
        "cost": cost_so_far(gs) if session is not None else None,
        "elapsed_s": elapsed_s(session),
        "elapsed_text": duration_text(timedelta(seconds=elapsed_s(session) or 0))
        if session
        else None,
        "running": bool(session is not None and session.stopped_at is None),
        # Sent to the page's socket as JSON: the exact register as text.
        "meter_start_wh": wh_text(session.meter_start_wh) or None if session else None,
        "no_reading": bool(session is not None and session.no_reading),
        "transaction_id": session.transaction_id if session else None,
        "session_id": session.pk if session else None,
        # The charger has ended the session but it is not settled yet: a page that opens now
        # (after the stop, its "stopped" event already gone) settles it if no worker does.
        "awaiting_settlement": bool(
            session is not None
            and session.status == ChargingSession.Status.COMPLETED
            and gs.state == GuestSession.State.CHARGING
        ),
        "failure": gs.failure_message,
        "seconds_left": seconds_left,
        "can_stop": gs.state
        in (GuestSession.State.PENDING, GuestSession.State.STARTING, GuestSession.State.CHARGING),
        "stop_requested": gs.stop_requested_at is not None,
        # The site's shared power budget (docs/power.md): what this car may draw, or its turn.
        "power": allowance["text"] if allowance else None,
        "power_waiting": bool(allowance and allowance["waiting"]),
        "receipt_url": reverse("guest:receipt", args=[gs.key])
        if gs.state == GuestSession.State.FINISHED
        else None,
    }
