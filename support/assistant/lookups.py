"""The live lookups behind a host's questions that name no charger, and what a ticket needs.

Seed 003 sections 1, 8 and 10 for hosts: which of their chargers are offline, whether a PMS is
connected and how its sync is doing, whether a bank account is set up, the payouts and why one
failed. Each answer also fills the details the section collects (PMS name, connected or not, the
payout in question), so the assistant does not ask a host what it can read itself. For the
account sections it collects, for the agent only, what identity verification needs.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from backoffice.models import Organization, Property
from billing.models import BillingSettings, Payment, Payout, Subscription
from chargers.models import Charger, ChargingSession
from metering.selectors import session_signature
from metering.transparency import status_text
from stays.models import PmsIntegration

if TYPE_CHECKING:
    from .diagnosis import Diagnosis, Viewer


def host_properties(viewer: Viewer) -> list[Property]:
    properties = Property.objects.order_by("name")
    if viewer.organization_ids is not None:
        properties = properties.filter(organization_id__in=viewer.organization_ids)
    return list(properties[:20])


def host_offline_chargers(viewer: Viewer, now: datetime) -> list[Charger]:
    chargers = Charger.objects.select_related("property").exclude(property=None)
    if viewer.organization_ids is not None:
        chargers = chargers.filter(property__organization_id__in=viewer.organization_ids)
    return [c for c in chargers.order_by("station_id")[:500] if not c.is_online(now)]


def pms_facts(viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> dict[str, str]:
    """Add the state of the host's PMS integrations; return the details they answer."""
    from .diagnosis import ago

    integrations = PmsIntegration.objects.order_by("vendor")
    if viewer.organization_ids is not None:
        integrations = integrations.filter(organization_id__in=viewer.organization_ids)
    found = list(integrations[:5])
    if not found:
        diagnosis.facts.append(
            "No PMS is connected to your account: bookings are not synced from Guesty, "
            "Hospitable or Track. Support connects one with the API credentials you send."
        )
        return {"pms_connected": "no PMS connected"}
    for integration in found:
        name = str(integration)
        if integration.state == PmsIntegration.State.ERROR:
            success = (
                f"; last successful sync {ago(integration.last_success_at, now)}"
                if integration.last_success_at
                else "; it has never synced"
            )
            diagnosis.facts.append(
                f"{name} is connected but its sync fails ({integration.failures} failed attempts): "
                f"{integration.last_error or 'no reason given'}{success}."
            )
        elif integration.state == PmsIntegration.State.BACKING_OFF:
            diagnosis.facts.append(
                f"{name} is connected; its API is rate limiting us, the next sync runs later."
            )
        elif integration.last_success_at:
            diagnosis.facts.append(
                f"{name} is connected and synced {ago(integration.last_success_at, now)} "
                f"({integration.listings_count} listings, {integration.reservations_count} reservations)."
            )
        else:
            diagnosis.facts.append(f"{name} is connected and has not synced yet.")
    first = found[0]
    return {
        "pms_name": str(first),
        "pms_connected": f"yes ({first.get_state_display().lower()})",
    }


def payout_account_facts(viewer: Viewer, diagnosis: Diagnosis) -> dict[str, str]:
    """Add whether payouts can be made at all; return the details they answer."""
    if viewer.organization_ids is None:
        return {}
    ready = BillingSettings.objects.filter(
        organization_id__in=viewer.organization_ids, payout_account_ready=True
    ).exists()
    payouts = Payout.objects.filter(organization_id__in=viewer.organization_ids)
    if not payouts.exists():
        diagnosis.facts.append(
            "No payout has been made yet: revenue on the dashboard is paid out per payout period "
            "once a payout is due."
        )
    if not ready:
        diagnosis.facts.append(
            "No bank account is ready for payouts, so nothing can be paid out: set it up under "
            "Payouts › Bank account for payouts."
        )
    failed = payouts.filter(status=Payout.Status.FAILED).order_by("-period_end").first()
    return {"payout_id_or_dates": failed.reference} if failed is not None else {}


def account_name(viewer: Viewer) -> str:
    """The host's property name when they have one, else their organization's (seed 003 §10)."""
    properties = host_properties(viewer)
    if len(properties) == 1:
        return properties[0].name
    organization = Organization.objects.filter(pk__in=viewer.organization_ids or []).first()
    return organization.name if organization is not None else ""


def identity_facts(email: str) -> list[str]:
    """What an agent needs to verify and act on an account request (never shown to the asker)."""
    if not email:
        return []
    payments = Payment.objects.filter(email__iexact=email).order_by("-created_at")
    last = payments.first()
    subscriptions = Subscription.objects.filter(email__iexact=email)
    active = [s for s in subscriptions if s.status == Subscription.Status.ACTIVE]
    facts = [
        f"{email}: {payments.count()} payments"
        + (
            f", last {last.created_at:%d %b %Y} on the card ending {last.card_last4}"
            if last and last.card_last4
            else ""
        )
        + f"; {len(active)} active subscription(s)"
        + (f" ({', '.join(str(s.plan) for s in active)})" if active else "")
        + "."
    ]
    return facts


def _kwh(wh: object) -> str:
    return f"{Decimal(str(wh)) / 1000:.3f} kWh"


def signed_meter_facts(session: ChargingSession, diagnosis: Diagnosis) -> None:
    """Add what the meter signed (OCMF, docs/metering.md): verified, or what failed."""
    summary = session_signature(session)
    if summary is None:
        return
    if summary.verified and summary.start is not None and summary.end is not None:
        readings = ""
        if summary.start.value_wh is not None and summary.end.value_wh is not None:
            readings = (
                f": signed start {_kwh(summary.start.value_wh)}, signed end "
                f"{_kwh(summary.end.value_wh)}, so {_kwh(summary.energy_wh or 0)} billed"
            )
        diagnosis.facts.append(
            f"{status_text(summary.status)}{readings}. The receipt offers the transparency data "
            "to check it in the S.A.F.E. transparency software."
        )
        return
    reason = f" ({summary.reason})" if summary.reason else ""
    diagnosis.facts.append(
        f"{status_text(summary.status)}{reason}. Billing does not rely on readings that do not "
        "verify: the settlement of this session is held for review."
    )
