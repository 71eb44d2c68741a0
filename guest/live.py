"""The state a guest's session page shows, as one JSON-able snapshot (page render and websocket)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.urls import reverse
from django.utils import timezone

from chargers.models import Connector, MeterValue

from .models import GuestSession
from .services import start_timeout_s

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
}


def parse_reading(text: str | None) -> tuple[Decimal | None, str]:
    """Return (value, unit) of a "123.4 Wh"-style reading from a connector event."""
    if not text:
        return None, ""
    number, _, unit = str(text).partition(" ")
    try:
        return Decimal(number), unit.strip()
    except InvalidOperation:
        return None, ""


def energy_kwh(register: Decimal | None, unit: str, meter_start_wh: int | None) -> Decimal | None:
    if register is None or meter_start_wh is None:
        return None
    wh = register * 1000 if unit.lower() == "kwh" else register
    return max((wh - meter_start_wh) / 1000, Decimal(0)).quantize(Decimal("0.001"))


def power_kw(value: Decimal | None, unit: str) -> Decimal | None:
    if value is None:
        return None
    kw = value if unit.lower() == "kw" else value / 1000
    return kw.quantize(Decimal("0.1"))


def snapshot(gs: GuestSession) -> dict:
    """Return the page state of this guest session only."""
    connector = Connector.objects.filter(
        charger_id=gs.charger_id, connector_id=gs.connector_id
    ).first()
    status = connector.status if connector else ""
    session = gs.charging_session
    kw = kwh = None
    if session is not None:
        latest = {}
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
            kwh = (Decimal(session.energy_wh) / 1000).quantize(Decimal("0.001"))
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
    return {
        "state": gs.state,
        "state_label": gs.get_state_display(),
        "status": status,
        "status_label": status_label,
        "kw": str(kw) if kw is not None else None,
        "kwh": str(kwh) if kwh is not None else None,
        "meter_start_wh": session.meter_start_wh if session else None,
        "transaction_id": session.transaction_id if session else None,
        "session_id": session.pk if session else None,
        "failure": gs.failure_message,
        "seconds_left": seconds_left,
        "can_stop": gs.state
        in (GuestSession.State.PENDING, GuestSession.State.STARTING, GuestSession.State.CHARGING),
        "stop_requested": gs.stop_requested_at is not None,
        "receipt_url": reverse("guest:receipt", args=[gs.key])
        if gs.state == GuestSession.State.FINISHED
        else None,
    }
