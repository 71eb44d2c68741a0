"""The live lookups behind a host's questions that name no charger, and what a ticket needs.

Seed 003 sections 1, 8 and 10 for hosts: which of their chargers are offline, whether a PMS is
connected and how its sync is doing, whether a bank account is set up, the payouts and why one
failed. Each answer also fills the details the section collects (PMS name, connected or not, the
payout in question), so the assistant does not ask a host what it can read itself. For the
account sections it collects, for the agent only, what identity verification needs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Q

from backoffice.models import Organization, Property
from billing.models import BillingSettings, Payment, Payout, Subscription
from chargers.models import Charger, ChargingSession, Connector
from fleet.models import Campaign, CampaignTarget
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


def host_chargers(viewer: Viewer) -> list[Charger]:
    """The host's chargers (those on their properties), by station id."""
    chargers = Charger.objects.select_related("property").exclude(property=None)
    if viewer.organization_ids is not None:
        chargers = chargers.filter(property__organization_id__in=viewer.organization_ids)
    return list(chargers.order_by("station_id")[:500])


def host_faulted_chargers(viewer: Viewer, now: datetime) -> list[Charger]:
    """The host's online chargers with a connector that is Faulted or reports an error code."""
    online = {c.pk: c for c in host_chargers(viewer) if c.is_online(now)}
    faulty = set(
        Connector.objects.filter(charger_id__in=online)
        .filter(Q(status="Faulted") | ~Q(error_code__in=("", "NoError")))
        .values_list("charger_id", flat=True)
    )
    return [charger for pk, charger in online.items() if pk in faulty]


def host_declined_payments(viewer: Viewer, now: datetime, hours: int = 24) -> list[Payment]:
    """Guest payments the card's bank declined in the last hours (still waiting for a card)."""
    payments = Payment.objects.filter(
        status=Payment.Status.PENDING, created_at__gte=now - timedelta(hours=hours)
    ).exclude(last_error="")
    if viewer.organization_ids is not None:
        payments = payments.filter(organization_id__in=viewer.organization_ids)
    return list(payments.order_by("-created_at")[:3])


def host_payments_that_fit(
    viewer: Viewer, now: datetime, *, amount: Decimal | None, last4: str, days: int = 30
) -> list[Payment]:
    """The organization's charged or held payments of the last days that fit what was given."""
    payments = Payment.objects.exclude(session=None).filter(
        created_at__gte=now - timedelta(days=days),
        status__in=(Payment.Status.CAPTURED, Payment.Status.AUTHORIZED),
    )
    if viewer.organization_ids is not None:
        payments = payments.filter(organization_id__in=viewer.organization_ids)
    if last4:
        payments = payments.filter(card_last4=last4)
    fits = list(payments.select_related("session__charge").order_by("-created_at")[:50])
    if amount is not None:
        fits = [
            p
            for p in fits
            if amount
            in (
                p.amount_captured,
                p.amount_held,
                getattr(getattr(p.session, "charge", None), "total", None),
            )
        ]
    return fits


def firmware_campaign_sentences(viewer: Viewer, limit: int = 3) -> list[str]:
    """The host's firmware campaigns not finished yet, each in one sentence: its status, its
    chargers' counts and why the first waiting one waits."""
    campaigns = Campaign.objects.exclude(status=Campaign.Status.COMPLETED).select_related("release")
    if viewer.organization_ids is not None:
        campaigns = campaigns.filter(organization_id__in=viewer.organization_ids)
    sentences = []
    for campaign in campaigns.order_by("-created_at", "-pk")[:limit]:
        statuses = list(campaign.targets.values_list("status", "reason"))
        done = sum(1 for status, _ in statuses if status == CampaignTarget.Status.SUCCEEDED)
        failed = sum(1 for status, _ in statuses if status == CampaignTarget.Status.FAILED)
        waits = [r for status, r in statuses if status == CampaignTarget.Status.PENDING and r]
        line = (
            f"Your campaign “{campaign.name}” ({campaign.release}) is "
            f"{campaign.get_status_display().lower()}: {done} of {len(statuses)} charger(s) "
            f"updated, {failed} failed"
        )
        if campaign.status_reason:
            line += f" ({campaign.status_reason})"
        if waits:
            line += f"; {len(waits)} waiting ({waits[0][0].lower() + waits[0][1:]})"
        sentences.append(line + ".")
    return sentences
