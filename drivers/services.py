"""Driver self-service writes: saved cards, subscriptions, claiming guest sessions, deletion."""

from __future__ import annotations

import logging
import re
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string

from billing import services as billing_services
from billing.gateways import GatewayError, SetupIntent, get_gateway
from billing.models import (
    Payment,
    Subscription,
    SubscriptionInvoice,
    SubscriptionPlan,
    WebhookEvent,
)
from guest.models import GuestSession

from .models import ClaimedSession, DriverProfile, DriverSignIn, SavedCard
from .selectors import account_emails, account_subscriptions

# A SetupIntent id as Stripe and the sandbox write it. An empty one asked Stripe for
# /v1/setup_intents/, the list of them, whose answer has no id (a 500 on the return page).
_SETUP_INTENT_ID = re.compile(r"seti_[A-Za-z0-9_]{1,200}")

logger = logging.getLogger(__name__)


def verified_email(profile: DriverProfile) -> str:
    """Return the driver's verified primary email, or '' (claims and charges need one)."""
    row = EmailAddress.objects.filter(user_id=profile.user_id, primary=True, verified=True).first()
    return row.email.lower() if row else ""


def _customer(profile: DriverProfile) -> str:
    """Return the processor's customer of the driver, created once (idempotency key per driver)."""
    if profile.customer_ref:
        return profile.customer_ref
    customer = get_gateway().customer_create(
        email=verified_email(profile), idempotency_key=f"driver-{profile.pk}"
    )
    DriverProfile.objects.filter(pk=profile.pk, customer_ref="").update(customer_ref=customer)
    profile.refresh_from_db(fields=["customer_ref"])
    return profile.customer_ref


def card_setup_start(*, profile: DriverProfile, attempt: str) -> SetupIntent:
    """Create a SetupIntent for the Payment Element (or the sandbox's card element)."""
    customer = _customer(profile)
    return get_gateway().setup_intent_create(
        customer=customer, idempotency_key=f"driver-{profile.pk}-{attempt}"
    )


def card_setup_finish(*, profile: DriverProfile, setup_intent: str) -> SavedCard:
    """Record the card a confirmed SetupIntent saved. The intent must be this driver's customer's."""
    if not _SETUP_INTENT_ID.fullmatch(setup_intent):
        raise ValidationError("The card was not saved. Please try again.")
    gateway = get_gateway()
    intent = gateway.setup_intent_get(setup_intent)
    if not profile.customer_ref or intent.customer != profile.customer_ref:
        raise PermissionDenied("This card setup belongs to another account.")
    if intent.status != "succeeded" or not intent.payment_method:
        raise ValidationError(intent.error or "The card was not saved. Please try again.")
    card = gateway.payment_method_get(intent.payment_method)
    with transaction.atomic():
        DriverProfile.objects.select_for_update().get(
            pk=profile.pk
        )  # one default, even for two tabs
        existing = SavedCard.objects.filter(reference=card.reference).first()
        if existing is not None:
            return existing
        first = not SavedCard.objects.filter(profile=profile).exists()
        saved = SavedCard.objects.create(
            profile=profile,
            reference=card.reference,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            is_default=first,
        )
    if first:
        billing_services.subscription_payment_method_set(
            customer_ref=profile.customer_ref, payment_method_ref=saved.reference
        )
    return saved


def _own_card(profile: DriverProfile, card_id: int) -> SavedCard:
    card = SavedCard.objects.filter(pk=card_id, profile=profile).first()
    if card is None:
        raise PermissionDenied("No such card in this account.")
    return card


def card_set_default(*, profile: DriverProfile, card_id: int) -> SavedCard:
    """Make a card the default; active subscriptions are charged to it from now on."""
    with transaction.atomic():
        DriverProfile.objects.select_for_update().get(pk=profile.pk)
        card = _own_card(profile, card_id)
        SavedCard.objects.filter(profile=profile, is_default=True).exclude(pk=card.pk).update(
            is_default=False
        )
        SavedCard.objects.filter(pk=card.pk).update(is_default=True)
        billing_services.subscription_payment_method_set(
            customer_ref=profile.customer_ref, payment_method_ref=card.reference
        )
    card.is_default = True
    return card


def card_remove(*, profile: DriverProfile, card_id: int) -> None:
    """Detach the card at the processor and forget it. The only card of an active subscription
    stays: the next monthly fee needs a card (cancel the plan or add another card first)."""
    card = _own_card(profile, card_id)
    others = SavedCard.objects.filter(profile=profile).exclude(pk=card.pk).order_by("created_at")
    active = Subscription.objects.filter(
        customer_ref=profile.customer_ref, status=Subscription.Status.ACTIVE
    )
    if profile.customer_ref and active.exists() and not others.exists():
        raise ValidationError(
            "This card pays your subscription. Add another card or cancel the subscription first."
        )
    get_gateway().payment_method_detach(card.reference)
    with transaction.atomic():
        DriverProfile.objects.select_for_update().get(pk=profile.pk)
        SavedCard.objects.filter(pk=card.pk).delete()
        if card.is_default:
            successor = others.first()
            if successor is not None:
                SavedCard.objects.filter(pk=successor.pk).update(is_default=True)
                billing_services.subscription_payment_method_set(
                    customer_ref=profile.customer_ref, payment_method_ref=successor.reference
                )


def subscribe(*, profile: DriverProfile, plan_id: int) -> Subscription:
    """Subscribe to a property's plan, paid monthly by the default card (first month now)."""
    plan = (
        SubscriptionPlan.objects.select_related("property").filter(pk=plan_id, active=True).first()
    )
    if plan is None:
        raise ValidationError("This plan is not offered.")
    email = verified_email(profile)
    if not email:
        raise ValidationError("Verify your email first.")
    card = SavedCard.objects.filter(profile=profile, is_default=True).first()
    if card is None:
        raise ValidationError("Save a card first: the monthly fee is charged to it.")
    return billing_services.subscription_subscribe(
        plan=plan, email=email, customer_ref=profile.customer_ref, payment_method_ref=card.reference
    )


def subscription_cancel(*, profile: DriverProfile, subscription_id: int) -> Subscription:
    subscription = Subscription.objects.filter(
        pk=subscription_id, customer_ref=profile.customer_ref
    ).first()
    if subscription is None or not profile.customer_ref:
        raise PermissionDenied("No such subscription in this account.")
    return billing_services.subscription_cancel(subscription=subscription)


def sessions_claim(*, profile: DriverProfile) -> int:
    """Claim the guest sessions paid with the driver's verified email; return how many were new."""
    email = verified_email(profile)
    if not email:
        raise ValidationError(
            "Verify your email first: only sessions paid with a verified email can be claimed."
        )
    claimed = 0
    with transaction.atomic():
        for gs in (
            GuestSession.objects.filter(email__iexact=email)
            .exclude(pk__in=ClaimedSession.objects.values("guest_session_id"))
            .select_for_update()
        ):
            ClaimedSession.objects.create(profile=profile, guest_session=gs)
            claimed += 1
    return claimed


def driver_email_changed(*, user_id: int, old: str, new: str) -> None:
    """After a confirmed change of email: remember the old address (its payments and guest
    sessions stay the driver's, for claims and deletion) and send plan receipts to the new one."""
    with transaction.atomic():
        profile = DriverProfile.objects.select_for_update().filter(user_id=user_id).first()
        if profile is None:
            return
        if old and old.lower() not in profile.former_emails:
            profile.former_emails = [*profile.former_emails, old.lower()]
            profile.save(update_fields=["former_emails"])
        billing_services.subscription_email_set(
            customer_ref=profile.customer_ref, email=new.lower()
        )


def driver_sign_in_record(*, user_id: int, session_key: str) -> None:
    """Remember a driver's session so that deleting the account ends it everywhere."""
    profile = DriverProfile.objects.filter(user_id=user_id).first()
    if profile is not None:
        from datetime import timedelta

        from django.conf import settings
        from django.utils import timezone

        # Sessions older than the cookie's age have expired anyway.
        DriverSignIn.objects.filter(
            profile=profile,
            created_at__lt=timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE),
        ).delete()
        DriverSignIn.objects.create(profile=profile, session_key=session_key)


def _sessions_end(session_keys: list[str]) -> None:
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    for key in session_keys:
        store(session_key=key).delete()


# -- deleting an account -------------------------------------------------------------------------


def _scrub_audit_log(actor_id: int, content_type_ids_and_pks: list[tuple[int, list[str]]]) -> None:
    """The audit log copies field values (the user's email, a payment's card digits); keep who
    did what and when, drop the values of the erased rows."""
    from auditlog.models import LogEntry

    LogEntry.objects.filter(actor_id=actor_id).update(actor_email="", remote_addr=None)
    for ct_id, pks in content_type_ids_and_pks:
        if pks:
            LogEntry.objects.filter(content_type_id=ct_id, object_pk__in=pks).update(
                changes={},
                changes_text="",
                object_repr="(erased)",
                additional_data=None,
                serialized_data=None,
            )


def account_delete(*, user: Any) -> None:
    """Delete a driver's account and personal data.

    Cards are detached and the customer deleted at the processor; the user, profile, email
    addresses, saved cards and claims are deleted; payments, guest sessions and subscriptions
    stay for the ledger, taxes and the host's statements, with email and card digits erased; the
    guest tokens are invalidated. A confirmation goes to the address being deleted.
    """
    from auditlog.context import disable_auditlog
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.contenttypes.models import ContentType

    from authorization.models import Token
    from support.models import AssistantConversation, Ticket, TicketMessage

    profile = DriverProfile.objects.get(user=user)
    emails = account_emails(user, profile)
    address = verified_email(profile) or (emails[0] if emails else "")
    gateway = get_gateway()
    # At the processor first (no transaction may be open around a gateway call).
    for reference in SavedCard.objects.filter(profile=profile).values_list("reference", flat=True):
        try:
            gateway.payment_method_detach(reference)
        except GatewayError:
            logger.warning(
                "Could not detach a card of driver %s; the customer is deleted next", profile.pk
            )
    if profile.customer_ref:
        gateway.customer_delete(profile.customer_ref)
    email_q = Q(pk__in=[])  # matches nothing without an email (an empty Q() would match all)
    for email in emails:
        email_q |= Q(email__iexact=email)
    with transaction.atomic(), disable_auditlog():
        from .roaming import roaming_token_block

        # Partner networks refuse the app token from now on (pushed as valid: false).
        roaming_token_block(profile)
        subscription_ids = list(
            account_subscriptions(profile, emails).values_list("pk", flat=True)
        )  # a list: the rows are about to lose what matched them
        subscriptions = Subscription.objects.filter(pk__in=subscription_ids)
        for subscription in subscriptions.filter(status=Subscription.Status.ACTIVE):
            billing_services.subscription_cancel(subscription=subscription)
        subscriptions.update(email="", customer_ref="", payment_method_ref="", token=None)
        # The driver's payments: by any address they used, their plan fees and claimed sessions.
        claimed = GuestSession.objects.filter(
            pk__in=ClaimedSession.objects.filter(profile=profile).values("guest_session_id")
        )
        payment_ids = list(
            Payment.objects.filter(
                email_q
                | Q(
                    pk__in=SubscriptionInvoice.objects.filter(
                        subscription__in=subscriptions
                    ).values("payment_id")
                )
                | Q(pk__in=claimed.exclude(payment_id=None).values("payment_id"))
            ).values_list("pk", flat=True)
        )
        Payment.objects.filter(pk__in=payment_ids).update(email="", card_last4="")
        # The processor's events about those payments copy the card's last 4: keep the event
        # ids (deduplication) and drop their bodies.
        references = list(
            Payment.objects.filter(pk__in=payment_ids).values_list("reference", flat=True)
        )
        WebhookEvent.objects.filter(object_id__in=references).update(payload={})
        guest_sessions = GuestSession.objects.filter(email_q | Q(pk__in=claimed.values("pk")))
        Token.objects.filter(pk__in=guest_sessions.exclude(token=None).values("token_id")).update(
            valid=False
        )
        guest_sessions.update(email="", card_last4="")
        # Support keeps the ticket (what happened, for the host and the agent), not who wrote it.
        ticket_ids = [str(pk) for pk in Ticket.objects.filter(email_q).values_list("pk", flat=True)]
        Ticket.objects.filter(email_q).update(email="", name="")
        to_q, from_q = Q(pk__in=[]), Q(pk__in=[])
        for email in emails:
            to_q |= Q(to_email__iexact=email)
            from_q |= Q(from_email__iexact=email)
        TicketMessage.objects.filter(to_q).update(to_email="")
        TicketMessage.objects.filter(from_q).update(from_email="")
        AssistantConversation.objects.filter(email_q).update(email="")
        usernames = [user.username, *emails]
        AccessAttempt.objects.filter(username__in=usernames).delete()
        AccessLog.objects.filter(username__in=usernames).delete()
        AccessFailureLog.objects.filter(username__in=usernames).delete()
        user_pk = str(user.pk)
        User = get_user_model()
        _scrub_audit_log(
            user.pk,
            [
                (ContentType.objects.get_for_model(User).pk, [user_pk]),
                (ContentType.objects.get_for_model(Payment).pk, [str(pk) for pk in payment_ids]),
                (ContentType.objects.get_for_model(Ticket).pk, ticket_ids),
            ],
        )
        session_keys = list(
            DriverSignIn.objects.filter(profile=profile).values_list("session_key", flat=True)
        )
        user.delete()  # cascades: profile, saved cards, claims, sign-ins, allauth's email addresses
        _sessions_end(session_keys)
    if address:
        body = render_to_string("drivers/email_account_deleted.txt", {})
        try:
            send_mail("Your account was deleted", body, None, [address])
        except Exception:  # the account is gone: the page says so, the mail is a courtesy
            logger.warning("Could not email driver %s that the account was deleted", profile.pk)


def driver_start(
    *,
    profile: DriverProfile,
    charger: Any,
    connector_id: int,
    email: str,
    site_url: str = "",
    price_version: str = "",
) -> GuestSession:
    """A signed-in driver starts with their saved card (issue 35 item 19): the hold is confirmed
    with the card at once, the charger is started, and the session is the driver's (their history
    and receipts). Raises guest.services.StartRefused as the guest start does."""
    from guest.services import guest_start

    from .selectors import default_card

    card = default_card(profile)
    if card is None or not profile.customer_ref:
        raise ValidationError("Save a card first.")
    gs = guest_start(
        charger=charger,
        connector_id=connector_id,
        email=email,
        site_url=site_url,
        payment_method=card.reference,
        customer=profile.customer_ref,
        driver=True,
        price_version=price_version,
    )
    ClaimedSession.objects.get_or_create(guest_session=gs, defaults={"profile": profile})
    return gs


def business_details_set(*, profile: DriverProfile, company_name: str, vat_id: str) -> None:
    """Store the driver's company name and VAT ID (docs/billing.md, Receipts); both empty for a
    private driver. Receipts already issued keep what they were issued with."""
    from billing.taxes import VAT_ID_RULE, vat_id_normalized

    company = " ".join(company_name.split())[:200]
    vat = vat_id_normalized(vat_id)
    if vat is None:
        raise ValidationError(VAT_ID_RULE)
    if vat and not company:
        raise ValidationError("Give the company's name with its VAT number.")
    DriverProfile.objects.filter(pk=profile.pk).update(company_name=company, vat_id=vat)
