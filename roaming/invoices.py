"""The invoice we issue for a session paid at a payment terminal (OCPI 2.3.0 mod_payments,
InvoiceCreator CPO): the driver opens it from the terminal (invoice_base_url +
authorization_reference); the PTP's financial advice confirmation adds the EFT data."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone

from backoffice.formatting import zone_or_utc
from billing.money import round_money
from billing.services import session_cost
from chargers.models import ChargingSession

from . import payments
from .models import FinancialAdviceConfirmation, TerminalPayment


def _amount(value: Decimal, currency: str) -> str:
    return f"{currency} {round_money(value, currency):f}"


def terminal_invoice(*, key: str, reference: str) -> dict[str, Any] | None:
    """Return what the invoice page shows, or None: an unknown key or reference, a PTP that
    invoices itself, or a session not finished yet (nothing to invoice)."""
    payment = (
        TerminalPayment.objects.select_related(
            "session", "session__charger", "session__charger__property", "terminal", "partner"
        )
        .filter(terminal__invoice_key=key, authorization_reference=reference)
        .first()
    )
    session = payment.session if payment is not None else None
    if (
        payment is None
        or session is None
        or session.status != ChargingSession.Status.COMPLETED
        or not payment.invoice_reference_id
    ):
        return None
    prop = session.charger.property
    assert prop is not None
    zone = zone_or_utc(prop.timezone)
    cost = session_cost(session)
    currency = cost.currency
    confirmation = payment.confirmations.order_by("-received_at", "-pk").first()
    return {
        "payment": payment,
        "seller": prop.organization.name,
        "property": prop,
        "station_id": session.charger.station_id,
        "connector_id": session.connector_id,
        "started_at": timezone.localtime(session.started_at, zone),
        "stopped_at": timezone.localtime(session.stopped_at, zone) if session.stopped_at else None,
        "tz_name": str(zone),
        "energy_kwh": (cost.energy_wh / 1000).quantize(Decimal("0.001"))
        if cost.energy_wh is not None
        else None,
        "lines": [(line["description"], _amount(line["amount"], currency)) for line in cost.lines],
        "subtotal": _amount(cost.subtotal, currency),
        "tax": _amount(cost.tax, currency) if cost.tax else "",
        "total": _amount(cost.total, currency),
        "prices_include_tax": cost.prices_include_tax,
        "tax_percent": cost.tax_percent,
        "confirmation": confirmation,
        "captured": _amount(confirmation.total_incl_tax, confirmation.currency)
        if confirmation is not None
        else "",
        "failed": confirmation is not None
        and confirmation.capture_status_code == FinancialAdviceConfirmation.Capture.FAILED,
        "status": payments.payment_status(payment),
    }
