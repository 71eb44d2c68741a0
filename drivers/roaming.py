"""Driver accounts on partner networks (docs/ocpi.md, "Driver accounts roaming"): the driver's
app token, starting and stopping at a partner CPO's charger, and paying each CDR at our price
to the driver with the saved card.

The token is issued by the eMSP identity support marked for driver accounts
(`roaming.EmspIdentity.driver_accounts`); the OCPI side (commands, CDR check, prices) is
roaming's. Writes here are the driver's own: every lookup starts from their profile.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from authorization.models import Token
from authorization.services import token_update
from billing import ledger
from billing.gateways import get_gateway
from billing.models import LedgerTransaction, Payment
from billing.services.exchange_rates import Conversion, conversion
from roaming import emsp_driving
from roaming.models import (
    EmspIdentity,
    PartnerCdr,
    PartnerCommand,
    PartnerLocation,
    PartnerSession,
)
from roaming.ocpi import parse_datetime

from .models import DriverProfile
from .selectors import default_card

logger = logging.getLogger(__name__)

# A refused card is tried again at the next sweeps, then the charge is failed (support sees it
# in Django admin, Partner CDRs, filter "Payment").
ROAMING_CHARGE_ATTEMPTS = 3
# The processor keeps an idempotency key at least 24 hours (Stripe), then may forget it: a retry
# after that is a new charge. A charge left without an answer this long (since its first
# unanswered try, `PartnerCdr.payment_unanswered_since`) is not asked again but left to support
# to reconcile with the processor's payments (metadata partner_cdr), as billing's subscriptions
# (SUBSCRIPTION_UNANSWERED_GIVE_UP) and refunds (REFUND_KEY_KEPT) are.
ROAMING_CHARGE_UNANSWERED_GIVE_UP = timedelta(hours=23)
UNANSWERED_TEXT = (
    "The payment processor did not answer for a day, so this charge is not asked again (you are "
    "never charged twice): support checks with the processor whether the first try went through."
)


def roaming_token(profile: DriverProfile, identity: EmspIdentity) -> Token:
    """The driver's app token on the identity's networks, issued on first use (a new one when
    driver accounts moved to another identity). Its post_save pushes it to the CPO partners."""
    with transaction.atomic():
        locked = DriverProfile.objects.select_for_update().get(pk=profile.pk)
        token = locked.roaming_token
        if token is not None and token.organization_id == identity.organization_id:
            return token
        token = Token.objects.create(
            organization_id=identity.organization_id,
            uid="DRV" + secrets.token_hex(6).upper(),
            type=Token.Type.APP,
            label=f"Driver account {profile.pk}",
        )
        DriverProfile.objects.filter(pk=profile.pk).update(roaming_token=token)
        profile.roaming_token = token
        return token


def roaming_start(
    *, profile: DriverProfile, location_pk: int, evse_uid: str, connector_id: str, site_url: str
) -> PartnerCommand:
    """Start at a partner's charger with the driver's app token. The saved card pays the CDR, so
    one is needed first. Raise ValidationError or roaming.emsp_driving.CommandRefused."""
    identity = emsp_driving.driver_identity()
    if identity is None:
        raise ValidationError("Charging on other networks is not offered.")
    if default_card(profile) is None or not profile.customer_ref:
        raise ValidationError("Save a card first: it pays for sessions on other networks.")
    location = emsp_driving.network_location(identity, location_pk)
    if location is None:
        raise ValidationError("That location is not on our partner networks any more.")
    token = roaming_token(profile, identity)
    return emsp_driving.start_session(
        identity=identity,
        token=token,
        location=location,
        evse_uid=evse_uid,
        connector_id=connector_id,
        site_url=site_url,
    )


def roaming_stop(*, profile: DriverProfile, session_pk: int, site_url: str) -> PartnerCommand:
    identity = emsp_driving.driver_identity()
    token = profile.roaming_token
    session = (
        PartnerSession.objects.filter(pk=session_pk, token=token).select_related("partner").first()
        if token is not None
        else None
    )
    if identity is None or token is None or session is None:
        raise ValidationError("That session is not yours.")
    return emsp_driving.stop_session(
        identity=identity, token=token, session=session, site_url=site_url
    )


def roaming_token_block(profile: DriverProfile) -> None:
    """The account is going: its app token may not charge anywhere (partners get valid: false)."""
    if profile.roaming_token_id is None:
        return
    token = Token.objects.filter(pk=profile.roaming_token_id).first()
    if token is not None and not token.blocked:
        token_update(token=token, blocked=True)  # cards' one writer


# -- paying the partner's CDRs -----------------------------------------------------------------


def roaming_cdr_due(*, cdr_id: int) -> bool:
    """A new CDR that agrees with its tariff, of a driver account's token, is due: return
    whether it became so (then the charge is queued)."""
    cdr = PartnerCdr.objects.filter(pk=cdr_id).first()
    if cdr is None or cdr.token_id is None or cdr.status != PartnerCdr.Status.AGREES:
        return False
    if cdr.price_total is None:
        return False
    if not DriverProfile.objects.filter(roaming_token_id=cdr.token_id).exists():
        return False
    return bool(
        PartnerCdr.objects.filter(pk=cdr_id, payment_status="").update(
            payment_status=PartnerCdr.PaymentStatus.DUE
        )
    )


def _fail(cdr: PartnerCdr, error: str) -> PartnerCdr:
    cdr.payment_status, cdr.payment_error = PartnerCdr.PaymentStatus.FAILED, error[:300]
    cdr.save(update_fields=["payment_status", "payment_error", "payment_attempts"])
    logger.warning("Partner CDR %s not charged: %s", cdr.pk, error)
    return cdr


def _paid(
    cdr: PartnerCdr, profile: DriverProfile, reference: str, last4: str, now: datetime
) -> None:
    assert cdr.price_total is not None
    amount = cdr.charged_amount if cdr.charged_amount is not None else cdr.price_total
    currency = cdr.charged_currency or cdr.currency
    payment = Payment.objects.create(
        organization_id=cdr.organization_id,
        email=profile.user.email,
        currency=currency,
        amount_held=amount,
        amount_captured=amount,
        gateway=get_gateway().name,
        reference=reference,
        status=Payment.Status.CAPTURED,
        card_last4=last4,
        session_ref=f"partner-cdr:{cdr.pk}",
        settled_at=now,
    )
    ledger.post(
        key=f"roaming-charge:{cdr.pk}",
        kind=LedgerTransaction.Kind.ROAMING_CHARGE,
        organization_id=cdr.organization_id,
        currency=currency,
        amount=amount,
        occurred_at=now,
        payment=payment,
        memo=f"Partner CDR {cdr.cdr_id} ({cdr.country_code}*{cdr.party_id})",
    )
    cdr.payment_status, cdr.payment_reference = PartnerCdr.PaymentStatus.PAID, reference
    cdr.payment_error, cdr.paid_at = "", now
    cdr.save(
        update_fields=[
            "payment_status",
            "payment_reference",
            "payment_error",
            "paid_at",
            "payment_attempts",
            "charged_amount",
            "charged_currency",
            "exchange_rate",
            "exchange_rate_day",
        ]
    )


def _email(cdr_id: int, *, paid: bool) -> None:
    """The driver's receipt for a paid partner CDR, or word that their card was refused."""
    cdr = PartnerCdr.objects.select_related("partner").get(pk=cdr_id)
    profile = (
        DriverProfile.objects.filter(roaming_token_id=cdr.token_id).select_related("user").first()
    )
    if profile is None or not profile.user.email:
        return
    place = cdr.data.get("cdr_location") if isinstance(cdr.data.get("cdr_location"), dict) else {}
    known = PartnerLocation.objects.filter(
        partner_id=cdr.partner_id, location_id=str(place.get("id", ""))
    ).first()
    place = {**place, **(known.data if known else {})}  # the location as we hold it has its name
    identity = emsp_driving.driver_identity()
    payment = Payment.objects.filter(session_ref=f"partner-cdr:{cdr.pk}").first()
    context = {
        "cdr": cdr,
        "place": ", ".join(str(place[k]) for k in ("name", "address", "city") if place.get(k))
        or str(place.get("id", "")),
        "network": cdr.partner.name,
        "started": ocpi_moment(cdr.data.get("start_date_time")),
        "energy": cdr.data.get("total_energy"),
        "last4": payment.card_last4 if payment else "",
        "seller": identity.business_name if identity else cdr.partner.name,
    }
    kind = "receipt" if paid else "failed"
    body = render_to_string(f"drivers/email_roaming_{kind}.txt", context)
    subject = (
        f"Receipt: charging at {context['place']}"
        if paid
        else "Your payment for charging on a partner network failed"
    )
    try:
        send_mail(subject, body, None, [profile.user.email])
    except Exception:
        # The charge is done and booked (the activity page shows it): a mail server that is down
        # must not end the sweep, which would leave the next CDRs uncharged until its next run.
        logger.warning("Could not email the driver about partner CDR %s", cdr_id, exc_info=True)


def ocpi_moment(value: object) -> datetime | None:
    try:
        return parse_datetime(str(value))
    except ValueError:
        return None


def billing_currency(organization_id: int) -> str:
    """What the eMSP organization bills its drivers in (its identity's currency)."""
    identity = EmspIdentity.objects.filter(organization_id=organization_id).first()
    return identity.currency if identity is not None else ""


def _billed(cdr: PartnerCdr) -> tuple[Decimal | None, str, Conversion | None]:
    """(amount, currency, conversion) to charge for the CDR: its price, or that price in our
    billing currency at the reference rate of the CDR's end day. (None, ...) while that day's
    rate is not known; the reason is kept on the CDR for support."""
    assert cdr.price_total is not None
    target = billing_currency(cdr.organization_id) or cdr.currency
    if target == cdr.currency:
        return cdr.price_total, cdr.currency, None
    ended = ocpi_moment(cdr.data.get("end_date_time")) or cdr.received_at
    converted = conversion(cdr.price_total, cdr.currency, target, on=ended.date())
    if converted is None:
        waiting = f"Waiting for the {cdr.currency} to {target} reference rate of {ended:%Y-%m-%d}."
        PartnerCdr.objects.filter(pk=cdr.pk).update(payment_error=waiting)
        logger.info("Partner CDR %s: %s", cdr.pk, waiting)
        return None, target, None
    return converted.amount, target, converted


def _unanswered_too_long(cdr: PartnerCdr, now: datetime) -> bool:
    """Give a due charge up for reconciliation when the processor has left it without an answer
    for ROAMING_CHARGE_UNANSWERED_GIVE_UP; True if it is given up (now or by another run)."""
    since = cdr.payment_unanswered_since
    if since is None or now - since < ROAMING_CHARGE_UNANSWERED_GIVE_UP:
        return False
    given_up = PartnerCdr.objects.filter(
        pk=cdr.pk, payment_status=PartnerCdr.PaymentStatus.DUE
    ).update(payment_status=PartnerCdr.PaymentStatus.FAILED, payment_error=UNANSWERED_TEXT)
    if given_up:
        logger.error(
            "Partner CDR %s: no answer from the processor since %s; not charged again, "
            "reconcile with the processor's payments (metadata partner_cdr=%s)",
            cdr.pk,
            since,
            cdr.pk,
        )
    cdr.refresh_from_db()
    return True


def roaming_cdr_charge(*, cdr_id: int, now: datetime | None = None) -> PartnerCdr:
    """Charge a due partner CDR's price to the driver's saved card, once. A processor that does
    not answer leaves it due with the same attempt (same idempotency key at the next sweep);
    a refusal is tried again up to ROAMING_CHARGE_ATTEMPTS, then failed."""
    now = now or timezone.now()
    cdr = PartnerCdr.objects.get(pk=cdr_id)
    if cdr.payment_status != PartnerCdr.PaymentStatus.DUE or cdr.price_total is None:
        return cdr
    credited = PartnerCdr.objects.filter(
        partner_id=cdr.partner_id,
        country_code=cdr.country_code,
        party_id=cdr.party_id,
        status=PartnerCdr.Status.CREDIT,
        data__credit_reference_id=cdr.cdr_id,
    ).exists()
    if credited:  # the network took it back before we charged it (its credit task was lost)
        PartnerCdr.objects.filter(pk=cdr.pk, payment_status=PartnerCdr.PaymentStatus.DUE).update(
            payment_status=PartnerCdr.PaymentStatus.CREDITED
        )
        cdr.refresh_from_db()
        return cdr
    if _unanswered_too_long(cdr, now):
        return cdr
    profile = (
        DriverProfile.objects.filter(roaming_token_id=cdr.token_id).select_related("user").first()
    )
    if profile is None:
        return _fail(cdr, "No driver account holds this token any more.")
    card = default_card(profile)
    attempt = cdr.payment_attempts + 1
    amount, currency, converted = _billed(cdr)
    if amount is None:
        return cdr  # waiting for the day's exchange rate: nobody is charged on a guess
    if amount <= 0:
        result_ok, reference, error, answered = True, f"free-partner-cdr-{cdr.pk}", "", True
    elif card is None or not profile.customer_ref:
        result_ok, reference, error, answered = False, "", "The driver has no saved card.", True
    else:
        result = get_gateway().charge_saved(
            amount=amount,
            currency=currency,
            customer=profile.customer_ref,
            payment_method=card.reference,
            idempotency_key=f"partner-cdr:{cdr.pk}:{attempt}",
            metadata={"partner_cdr": str(cdr.pk)},
            description=f"Charging at {cdr.partner.name}",
        )
        result_ok, reference, error, answered = (
            result.ok,
            result.reference,
            result.decline_reason,
            result.answered,
        )
    if not answered:
        # Charged or not is unknown: asked again with this attempt's key, for as long as the
        # processor keeps it (ROAMING_CHARGE_UNANSWERED_GIVE_UP from the first such try).
        PartnerCdr.objects.filter(pk=cdr.pk, payment_unanswered_since__isnull=True).update(
            payment_unanswered_since=now
        )
        logger.warning("Partner CDR %s: %s; asked again at the next sweep", cdr.pk, error)
        return cdr
    with transaction.atomic():
        cdr = PartnerCdr.objects.select_for_update().get(pk=cdr_id)
        if cdr.payment_status != PartnerCdr.PaymentStatus.DUE:
            return cdr  # another run finished it
        if cdr.payment_unanswered_since is not None:  # it answered: the next try is a new one
            cdr.payment_unanswered_since = None
            PartnerCdr.objects.filter(pk=cdr.pk).update(payment_unanswered_since=None)
        cdr.payment_attempts = attempt
        if result_ok:
            if converted is not None:
                cdr.charged_amount, cdr.charged_currency = converted.amount, currency
                cdr.exchange_rate, cdr.exchange_rate_day = converted.rate, converted.day
            _paid(cdr, profile, reference, card.last4 if card else "", now)
            transaction.on_commit(lambda: _email(cdr_id, paid=True))
            return cdr
        if attempt >= ROAMING_CHARGE_ATTEMPTS:
            transaction.on_commit(lambda: _email(cdr_id, paid=False))
            return _fail(cdr, error or "The card was refused.")
        cdr.payment_error = (error or "The card was refused.")[:300]
        cdr.save(update_fields=["payment_attempts", "payment_error"])
    return cdr


def roaming_charges_collect(*, now: datetime | None = None) -> int:
    """The sweep: charge every due partner CDR (a queued charge lost, an unanswered or refused
    attempt); return how many were paid."""
    paid = 0
    due = PartnerCdr.objects.filter(payment_status=PartnerCdr.PaymentStatus.DUE)
    for cdr_id in list(due.order_by("pk").values_list("pk", flat=True)[:500]):
        cdr = roaming_cdr_charge(cdr_id=cdr_id, now=now)
        paid += cdr.payment_status == PartnerCdr.PaymentStatus.PAID
    return paid


def roaming_credit(*, cdr_id: int) -> PartnerCdr | None:
    """A partner's credit CDR cancels the CDR it names (mod_cdrs "Credit CDRs": all of it; a new
    CDR may follow): still due, it is not charged; paid, the driver is refunded what was charged.
    Return the CDR it credited, or None when it names none of this driver's."""
    from billing.services import refund_issue

    credit = PartnerCdr.objects.filter(pk=cdr_id, status=PartnerCdr.Status.CREDIT).first()
    named = credit.data.get("credit_reference_id") if credit is not None else None
    if credit is None or not isinstance(named, str) or credit.token_id is None:
        return None
    original = PartnerCdr.objects.filter(
        partner_id=credit.partner_id,
        country_code=credit.country_code,
        party_id=credit.party_id,
        cdr_id=named[:39],
        token_id=credit.token_id,
    ).first()
    if original is None:
        return None
    with transaction.atomic():
        original = PartnerCdr.objects.select_for_update().get(pk=original.pk)
        if original.payment_status in ("", PartnerCdr.PaymentStatus.DUE):
            original.payment_status = PartnerCdr.PaymentStatus.CREDITED
            original.save(update_fields=["payment_status"])
            return original
    if original.payment_status != PartnerCdr.PaymentStatus.PAID:
        return original  # failed: nothing was taken; credited or refunded already
    payment = Payment.objects.filter(session_ref=f"partner-cdr:{original.pk}").first()
    if payment is not None and payment.refundable > 0:
        refund_issue(
            payment=payment,
            amount=payment.refundable,
            reason=f"The network credited this session (its record {original.cdr_id}).",
            source="network",
            idempotency_key=f"partner-credit:{credit.pk}",
        )
    PartnerCdr.objects.filter(pk=original.pk).update(
        payment_status=PartnerCdr.PaymentStatus.REFUNDED
    )
    original.payment_status = PartnerCdr.PaymentStatus.REFUNDED
    return original
