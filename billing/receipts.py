"""Numbered receipts (issue 51 item 5; docs/billing.md, "Receipts"): the seller is the host, the
organization whose charger the session ran on; the platform only collects the payment for it
(as payouts and statements already treat the money: the guest's charge is the host's gross).

`receipt_issue` gives a finished, priced session its receipt once, with the seller's next number.
The number is taken from the seller's `BillingSettings.next_receipt_number` under a row lock in the
same transaction that stores the receipt: a rollback returns the number, two issues never share
one, so each seller's receipts count 1, 2, 3… without gaps (EU invoicing rules, Directive
2006/112/EC art. 226(2): one sequence that identifies the invoice uniquely).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chargers.models import ChargingSession

from .models import BillingSettings, Receipt, SessionCharge
from .pricing import Cost


def seller_of(organization_id: int) -> tuple[str, str]:
    """(name, VAT number) the seller's receipts carry: its billing name, else the organization's."""
    settings = (
        BillingSettings.objects.filter(organization_id=organization_id)
        .select_related("organization")
        .first()
    )
    if settings is None:
        from backoffice.models import Organization

        return Organization.objects.get(pk=organization_id).name, ""
    return settings.seller_name or settings.organization.name, settings.vat_number


def receipt_facts(session: ChargingSession) -> dict:
    """What a receipt of the session says, kept on it when issued (Receipt.facts): its times,
    energy and cost, so that the receipt never changes after (a charger's own stop that later
    replaces an estimated one changes the session and its price, not the receipt)."""
    from .services.sessions import session_cost

    return {
        "started_at": session.started_at.isoformat() if session.started_at else None,
        "stopped_at": session.stopped_at.isoformat() if session.stopped_at else None,
        "energy_wh": None if session.energy_wh is None else str(session.energy_wh),
        "no_reading": session.no_reading,
        "cost": session_cost(session).as_facts(),
    }


@dataclass(frozen=True)
class IssuedFacts:
    """A receipt's facts as issued (receipt_facts), read back."""

    cost: Cost
    started_at: datetime | None
    stopped_at: datetime | None
    energy_wh: Decimal | None
    no_reading: bool


def receipt_issued_facts(receipt: Receipt | None) -> IssuedFacts | None:
    """What the receipt said when issued; None for no receipt, or one issued before its facts
    were kept (it shows the session as it is)."""
    facts = receipt.facts if receipt is not None else None
    if not facts:
        return None
    energy = facts["energy_wh"]
    return IssuedFacts(
        cost=Cost.from_facts(facts["cost"]),
        started_at=parse_datetime(facts["started_at"]) if facts["started_at"] else None,
        stopped_at=parse_datetime(facts["stopped_at"]) if facts["stopped_at"] else None,
        energy_wh=None if energy is None else Decimal(energy),
        no_reading=facts["no_reading"],
    )


def _receiptable(session_id: int) -> tuple[ChargingSession, int] | None:
    session = (
        ChargingSession.objects.select_related("charger__property")
        .filter(pk=session_id, status=ChargingSession.Status.COMPLETED)
        .first()
    )
    prop = session.charger.property if session is not None else None
    if session is None or prop is None:
        return None
    charge = SessionCharge.objects.filter(session_id=session_id, final=True).first()
    if charge is None or not charge.lines:
        return None  # nothing was sold: no rate priced the session
    return session, prop.organization_id


def receipt_issue(
    *, session_id: int, buyer_company: str = "", buyer_vat_id: str = ""
) -> Receipt | None:
    """Return the session's receipt, issuing it with the seller's next number the first time;
    None while there is nothing to receipt (not finished, or not priced)."""
    existing = Receipt.objects.filter(session_id=session_id).first()
    if existing is not None:
        return existing
    found = _receiptable(session_id)
    if found is None:
        return None
    session, organization_id = found
    try:
        with transaction.atomic():
            BillingSettings.objects.get_or_create(organization_id=organization_id)
            settings = BillingSettings.objects.select_for_update().get(
                organization_id=organization_id
            )
            name, vat = seller_of(organization_id)
            receipt = Receipt.objects.create(
                organization_id=organization_id,
                number=settings.next_receipt_number,
                session=session,
                issued_at=timezone.now(),
                seller_name=name,
                seller_vat_number=vat,
                buyer_company=buyer_company.strip()[:200],
                buyer_vat_id=buyer_vat_id.strip()[:20],
                facts=receipt_facts(session),
            )
            BillingSettings.objects.filter(pk=settings.pk).update(
                next_receipt_number=settings.next_receipt_number + 1
            )
    except IntegrityError:
        # Issued at the same moment by another process: its receipt (and number) stands, and
        # this transaction's number went back with the rollback.
        return Receipt.objects.get(session_id=session_id)
    return receipt
