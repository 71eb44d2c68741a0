"""Driver self-service reads: always scoped to the signed-in driver's own rows."""

from __future__ import annotations

from typing import Any

from django.db.models import DecimalField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery

from billing.models import Payment, Subscription, SubscriptionInvoice, SubscriptionPlan
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
    """The driver's claimed sessions, each with what they paid net of refunds (paid_net), the
    refunds (paid_refunded) and the currency, so the history shows the amount after a refund."""
    payment = Payment.objects.filter(pk=OuterRef("payment_id"))
    money: DecimalField = DecimalField(max_digits=14, decimal_places=4)
    return (
        GuestSession.objects.filter(
            pk__in=ClaimedSession.objects.filter(profile=profile).values("guest_session_id")
        )
        .select_related("charger__property", "charging_session")
        .annotate(
            paid_net=Subquery(
                payment.filter(status=Payment.Status.CAPTURED)
                .annotate(net=ExpressionWrapper(F("amount_captured") - F("amount_refunded"), money))
                .values("net")
            ),
            paid_refunded=Subquery(payment.values("amount_refunded"), output_field=money),
            paid_currency=Subquery(payment.values("currency")),
        )
        .order_by("-created_at")
    )


def session_get(profile: DriverProfile, session_id: int) -> GuestSession | None:
    return sessions_for(profile).filter(pk=session_id).first()


# -- what deleting an account does (the admin's confirmation page; services.account_delete) ----


def account_emails(user: Any, profile: DriverProfile) -> list[str]:
    """Every address of the driver: allauth's, the account's and the ones they changed from."""
    from allauth.account.models import EmailAddress

    return sorted(
        {e.lower() for e in EmailAddress.objects.filter(user=user).values_list("email", flat=True)}
        | ({user.email.lower()} if user.email else set())
        | set(profile.former_emails)
    )


def account_subscriptions(profile: DriverProfile, emails: list[str]) -> QuerySet[Subscription]:
    """The driver's plans: paid by their processor customer or held under one of their addresses."""
    match = Q(customer_ref=profile.customer_ref) if profile.customer_ref else Q(pk__in=[])
    for email in emails:
        match |= Q(email__iexact=email)
    return Subscription.objects.filter(match)


def account_delete_summary(user: Any) -> dict | None:
    """What deleting this account does, for the agent to read before confirming; None if the user
    is not a driver."""
    profile = DriverProfile.objects.filter(user=user).first()
    if profile is None:
        return None
    emails = account_emails(user, profile)
    return {
        "emails": emails,
        "active_subscriptions": list(
            account_subscriptions(profile, emails)
            .filter(status=Subscription.Status.ACTIVE)
            .select_related("plan__property")
        ),
        "cards": list(cards_for(profile)),
        "customer_ref": profile.customer_ref,
        "claimed_sessions": ClaimedSession.objects.filter(profile=profile).count(),
    }


def profile_of(user: Any) -> DriverProfile | None:
    return DriverProfile.objects.filter(user_id=user.pk).first() if user.is_authenticated else None


def default_card(profile: DriverProfile) -> SavedCard | None:
    """The card a one-tap start uses: the default, else the newest."""
    return cards_for(profile).order_by("-is_default", "-created_at").first()
