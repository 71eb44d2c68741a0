"""Driver self-service reads: always scoped to the signed-in driver's own rows."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import Subscription, SubscriptionInvoice, SubscriptionPlan
from guest.models import GuestSession

from .models import ClaimedSession, DriverProfile, SavedCard


def cards_for(profile: DriverProfile) -> QuerySet[SavedCard]:
    return SavedCard.objects.filter(profile=profile)


def subscriptions_for(profile: DriverProfile) -> QuerySet[Subscription]:
    if not profile.customer_ref:
        return Subscription.objects.none()
    return (
        Subscription.objects.filter(customer_ref=profile.customer_ref)
        .select_related("plan__property")
        .prefetch_related("invoices")
        .order_by("-started_at")
    )


def invoices_for(profile: DriverProfile) -> QuerySet[SubscriptionInvoice]:
    if not profile.customer_ref:
        return SubscriptionInvoice.objects.none()
    return SubscriptionInvoice.objects.filter(
        subscription__customer_ref=profile.customer_ref
    ).select_related("subscription__plan", "payment")


def plans_offered() -> QuerySet[SubscriptionPlan]:
    return (
        SubscriptionPlan.objects.filter(active=True)
        .select_related("property")
        .order_by("property__name", "name")
    )


def sessions_for(profile: DriverProfile) -> QuerySet[GuestSession]:
    return (
        GuestSession.objects.filter(
            pk__in=ClaimedSession.objects.filter(profile=profile).values("guest_session_id")
        )
        .select_related("charger__property", "charging_session")
        .order_by("-created_at")
    )


def session_get(profile: DriverProfile, session_id: int) -> GuestSession | None:
    return sessions_for(profile).filter(pk=session_id).first()
