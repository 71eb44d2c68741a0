"""Writes for guest charging: start (hold, token, remote start), stop, expiry, settlement."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from authorization.decisions import Context, Decision
from authorization.models import Token
from authorization.services import GUEST_PAGE_UID, decide_sync, decision_record
from backoffice.resend import send_each_once
from chargers.devices.commands import (
    ChargerOffline,
    CommandTimeout,
    InvalidCommand,
    send_command_sync,
)
from chargers.models import Charger, ChargingSession, Command
from chargers.plumbing.live import connector_watch
from chargers.sessions.services import charger_facts

from . import payments, starts
from .models import GuestSession
from .prompts import PROMPTS, PromptCode, landing_prompt, not_allowed_reason
from .selectors import (
    connector_busy_with_guest,
    connector_statuses,
    payment_timeout_s,
    port_rows,
    station_facts,
)
from .starts import (
    CHECK_LATER,
    NOTHING_HELD,
    OPEN_BEFORE_START,
    RELEASE_LATER,
    RELEASED,
    fail_and_release,
    fail_start,
    ports_locked,
    publish,
    release_hold,
    start_timeout_s,
)

logger = logging.getLogger(__name__)


class StartRefused(Exception):
    """The start cannot go on; `message` is for the guest, `prompt` names a seed prompt."""

    def __init__(
        self, code: str, message: str, *, prompt: PromptCode | None = None, field: str = ""
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.prompt = prompt
        self.field = field


class StopFailed(Exception):
    pass


GUEST_REFUSAL_EVERY_S = 600  # one recorded refusal per charger and reason in this window


def guest_refusal_record(*, charger: Charger, decision: Decision) -> bool:
    """Record that the guest page refused guests here (before any card is held), so the host sees
    it on the charger's Authorizations tab. At most once per charger and reason every 10 minutes:
    every visit of the landing page would otherwise add a row. Returns True when recorded."""
    from backoffice import shared_cache, throttle

    key = f"guest-refused:{charger.pk}:{decision.reason}"
    # While Redis is down this process remembers it: the page still says why, one row a window.
    first = shared_cache.use(
        lambda store: store.add(key, 1, GUEST_REFUSAL_EVERY_S),
        lambda: throttle.fallback.add(key, 1, GUEST_REFUSAL_EVERY_S),
    )
    if not first:
        return False
    decision_record(
        decision=decision,
        uid=GUEST_PAGE_UID,
        token_id=None,
        organization_id=charger.organization_id,
        station_id=charger.station_id,
        connector_id=None,
        context=Context.REMOTE_APP,
    )
    return True


def guest_start(
    *,
    charger: Charger,
    connector_id: int,
    email: str,
    site_url: str = "",
    payment_method: str = "",
    return_url: str = "",
    customer: str = "",
    driver: bool = False,
    price_version: str = "",
) -> GuestSession:
    """Reserve the port for a guest and create the card hold (a manual-capture PaymentIntent).

    The guest then confirms the hold in the browser (Payment Element / sandbox element) and
    guest_hold_confirmed sends RemoteStartTransaction. With `payment_method` (a PaymentMethod
    id such as a saved card or Stripe's pm_card_visa; never a card number) the hold is
    confirmed here and the start follows at once.

    Raises StartRefused before any money is held when the charger or the authorization engine
    says no, when there is no price, when the price changed since the page showed it
    (`price_version`, the page's payments.price_version_key), or when a server-side
    confirmation is declined. The price agreed to is stored and is the price billed.
    """
    connectors = connector_statuses(charger)
    code = landing_prompt(station_facts(charger, connectors), today=charger.license_today())
    if code is not None:
        raise StartRefused(code.value, PROMPTS[code].title, prompt=code)
    startable = {row["id"] for row in port_rows(connectors) if row["startable"]}
    if connector_id not in startable:
        raise StartRefused(
            "port_busy",
            "That port is not free right now. Please choose another port.",
            field="connector",
        )
    with transaction.atomic():
        ports_locked(charger.pk)  # one guest per port: a second tab waits, then finds it taken
        reserved = _reserve_port(
            charger=charger,
            connector_id=connector_id,
            email=email,
            site_url=site_url,
            driver=driver,
            price_version=price_version,
        )
    if isinstance(reserved, StartRefused):
        raise reserved
    gs = reserved
    amount, currency, prop = gs.amount_held, gs.currency, charger.property
    assert amount is not None and prop is not None  # _reserve_port found a rate, so a property
    try:
        intent = payments.hold_create(
            amount=amount,
            currency=currency,
            idempotency_key=f"guest-hold-{gs.key}",
            metadata={
                "guest_session": gs.key,
                "station_id": charger.station_id,
                "connector_id": str(connector_id),
            },
            description=f"Charging at {charger.station_id}",
            payment_method=payment_method,
            return_url=return_url,
            customer=customer,
        )
    except Exception:
        logger.exception("Creating the hold for guest session %s failed", gs.pk)
        said = "Card payments are not available right now."
        # Confirmed at once, the card may be held though the answer never came: the sweep finds
        # the hold by this session's key and releases it (failed_holds_release).
        fail_start(gs, "payments_unavailable", f"{said} {CHECK_LATER}" if payment_method else said)
        later = f" {CHECK_LATER}" if payment_method else ""
        raise StartRefused(
            "payments_unavailable",
            f"Card payments are not available right now. Please try again later.{later}",
        ) from None
    payment = payments.record(
        organization_id=prop.organization_id,
        amount_held=amount,
        currency=currency,
        reference=intent.reference,
        email=email,
        pending=True,
    )
    GuestSession.objects.filter(pk=gs.pk).update(
        payment_id=payment.pk, payment_reference=intent.reference
    )
    gs.payment_id, gs.payment_reference = payment.pk, intent.reference
    if payment_method:
        if not intent.held:
            fail_and_release(
                gs, "payment_declined", "Your card was declined. You were not charged."
            )
            reason = f" ({intent.decline_reason})" if intent.decline_reason else ""
            raise StartRefused(
                "payment_declined", f"Your card was declined{reason}. Please use another card."
            )
        return guest_hold_confirmed(gs=gs)
    return gs


def _reserve_port(
    *,
    charger: Charger,
    connector_id: int,
    email: str,
    site_url: str,
    driver: bool,
    price_version: str,
) -> GuestSession | StartRefused:
    """Take the port for a guest (the charger's row locked by the caller): the guest session with
    its one-time token and the price shown. Raises StartRefused before writing anything when the
    port is held or the price is missing or changed; returns the authorization's refusal."""
    if connector_busy_with_guest(charger.pk, connector_id):
        raise StartRefused(
            "port_busy",
            "That port is not free right now. Please choose another port.",
            field="connector",
        )
    shown_at = timezone.now()
    rate = payments.rate_for_charger(charger, shown_at)
    if rate is None:
        raise StartRefused(
            "no_price", "This charger has no guest price yet, so it cannot be started with a card."
        )
    if price_version and price_version != payments.price_version_key(rate):
        raise StartRefused(
            "price_changed",
            "The price changed since this page was opened. Please check the new price above "
            "and start again.",
        )
    amount = payments.hold_amount_for(rate)
    prop = charger.property
    assert prop is not None  # a charger of no property has no rate: refused just above

    uid = secrets.token_hex(10).upper()  # 20 characters: the OCPP 1.6 idToken limit
    token = Token.objects.create(
        uid=uid,
        type=Token.Type.GUEST,
        organization_id=prop.organization_id,
        allowed_station_ids=[charger.station_id],
        single_session=True,
        expires_at=timezone.now() + timedelta(days=1),
        # A signed-in driver's start is recorded as theirs (accepted_driver), not a guest's.
        label=Token.DRIVER_SESSION_LABEL if driver else Token.GUEST_SESSION_LABEL,
    )
    decision = decide_sync(uid=uid, charger=charger_facts(charger), context=Context.REMOTE_APP)
    # Recorded like every other remote start (Authorizations tab, audit), accepted or not.
    decision_record(
        decision=decision,
        uid=uid,
        token_id=token.pk,
        organization_id=prop.organization_id,
        station_id=charger.station_id,
        connector_id=connector_id,
        context=Context.REMOTE_APP,
    )
    if not decision.accepted:
        Token.objects.filter(pk=token.pk).update(valid=False)
        # Returned, not raised: the refusal and its retired token are kept (the caller raises).
        return StartRefused(
            decision.reason, not_allowed_reason(decision.reason), prompt=PromptCode.NOT_ALLOWED
        )

    currency = prop.currency
    gs = GuestSession.objects.create(
        charger=charger,
        connector_id=connector_id,
        email=email,
        token=token,
        id_tag=uid,
        amount_held=amount,
        currency=currency,
        site_url=site_url,
    )
    payments.price_shown_record(
        charger=charger, rate=rate, driver=driver, guest_session_id=gs.pk, at=shown_at
    )
    return gs


def guest_hold_confirmed(*, gs: GuestSession) -> GuestSession:
    """The guest's hold is confirmed at the processor: record it and start the charger, once.

    Called when the browser comes back from the payment (return_url) and when the webhook
    says the amount is capturable; the first caller starts, the other finds it done. The
    intent is read from the processor here, never trusted from the browser.
    """
    if gs.state != GuestSession.State.PENDING or gs.paid_at is not None or not gs.payment_reference:
        return gs
    intent = payments.hold_get(gs.payment_reference)
    if not intent.held:
        return gs
    payments.authorized(
        reference=intent.reference, amount_held=intent.amount, card_last4=intent.last4
    )
    claimed = GuestSession.objects.filter(
        pk=gs.pk, state=GuestSession.State.PENDING, paid_at__isnull=True
    ).update(paid_at=timezone.now(), amount_held=intent.amount, card_last4=intent.last4[-4:])
    gs.refresh_from_db()
    if not claimed:
        return gs
    charger = gs.charger
    # Ask the OCPP process to publish this charger's events before the car can start, so the
    # guest's page, which opens right after, misses nothing.
    connector_watch(charger.pk)
    try:
        command = send_command_sync(
            charger,
            "RemoteStartTransaction",
            {"connectorId": gs.connector_id, "idTag": gs.id_tag},
            source="guest",
        )
    except ChargerOffline:
        return fail_and_release(
            gs, "charger_offline", "The charger went offline before it could start."
        )
    except CommandTimeout:
        return fail_and_release(
            gs, "start_timeout", "The charger did not answer the start request."
        )
    except InvalidCommand:
        logger.exception("Guest remote start payload refused for %s", charger.station_id)
        return fail_and_release(gs, "start_failed", "The charger could not be started.")
    if command.status != Command.Status.ANSWERED or command.result_status != "Accepted":
        return fail_and_release(gs, "start_rejected", "The charger refused to start a session.")
    # The car may already have started (StartTransaction raced our answer): only move on from PENDING.
    GuestSession.objects.filter(pk=gs.pk, state=GuestSession.State.PENDING).update(
        state=GuestSession.State.STARTING, start_requested_at=timezone.now()
    )
    gs.refresh_from_db()
    if gs.state == GuestSession.State.STARTING:
        # starts.start_check, not the task itself: a broker that is down keeps the check with
        # its time in the outbox instead of dropping it.
        starts.start_check(gs.pk, start_timeout_s())
    publish(gs.pk)
    return gs


def guest_hold_authorized(*, reference: str) -> GuestSession | None:
    """The webhook's path into guest_hold_confirmed (by the PaymentIntent id)."""
    gs = GuestSession.objects.filter(payment_reference=reference).first()
    return None if gs is None else guest_hold_confirmed(gs=gs)


def guest_start_expire(*, guest_session_id: int, now: datetime | None = None) -> bool:
    """Release the hold of a start the car never followed within the timeout; True if it did."""
    now = now or timezone.now()
    gs = GuestSession.objects.filter(pk=guest_session_id).first()
    if gs is None or gs.state != GuestSession.State.STARTING or gs.charging_session_id:
        return False
    if gs.start_requested_at and gs.start_requested_at > now - timedelta(seconds=start_timeout_s()):
        return False
    before = gs.state
    fail_and_release(
        gs,
        "not_plugged_in",
        f"No charging started within {int(start_timeout_s())} seconds: the car was not plugged in, "
        "or it did not accept the charge.",
    )
    return before != gs.state


def guest_expire_overdue(*, now: datetime | None = None) -> int:
    """Expire every overdue start (a sweep that keeps holds correct if a scheduled check was
    lost), and every payment the guest left unfinished (the port is freed, the intent canceled)."""
    now = now or timezone.now()
    unpaid = GuestSession.objects.filter(
        state=GuestSession.State.PENDING,
        paid_at__isnull=True,
        created_at__lte=now - timedelta(seconds=payment_timeout_s()),
    )
    for gs in unpaid:
        fail_and_release(gs, "payment_abandoned", "The payment was not completed in time.")
    failed_holds_release(now=now)
    cutoff = now - timedelta(seconds=start_timeout_s())
    ids = list(
        GuestSession.objects.filter(
            state=GuestSession.State.STARTING,
            start_requested_at__lte=cutoff,
            charging_session__isnull=True,
        ).values_list("pk", flat=True)
    )
    return sum(guest_start_expire(guest_session_id=pk, now=now) for pk in ids)


def failed_holds_release(*, now: datetime) -> int:
    """Release the holds of failed starts the processor did not release at the time (it was
    down); return how many. A hold lapses by itself after about 7 days: not asked after that."""
    rows = GuestSession.objects.filter(
        state=GuestSession.State.FAILED,
        payment_id__isnull=False,
        finished_at__gte=now - timedelta(days=7),
        failure_message__endswith=RELEASE_LATER,
    ).values_list("payment_id", "pk")[:200]
    waiting = {payment_id: pk for payment_id, pk in rows if payment_id is not None}
    _unrecorded_holds_release(now=now)
    held = set(payments.unreleased(list(waiting)))
    released = 0
    for payment_id, pk in waiting.items():
        gs = GuestSession.objects.get(pk=pk)
        # Released meanwhile (the processor's cancel webhook) needs no call, only the words.
        if payment_id not in held or release_hold(gs):
            message = gs.failure_message.removesuffix(RELEASE_LATER) + RELEASED
            GuestSession.objects.filter(pk=gs.pk).update(failure_message=message)
            publish(gs.pk)
            released += 1
    return released


def _unrecorded_holds_release(*, now: datetime) -> None:
    """Failed starts whose hold's creation was never answered: look the hold up by the guest
    session's key and cancel it. Waits a minute (the processor's search lags) and 23 hours at
    most (then it keeps no trace of the request and a hold lapses by itself)."""
    waiting = GuestSession.objects.filter(
        state=GuestSession.State.FAILED,
        payment_id__isnull=True,
        finished_at__gte=now - timedelta(hours=23),
        finished_at__lte=now - timedelta(minutes=1),
        failure_message__endswith=CHECK_LATER,
    )[:50]
    for gs in waiting:
        try:
            payments.release_unrecorded(guest_session_key=gs.key)
        except payments.GatewayError:
            logger.warning("Looking up the unrecorded hold of guest session %s failed", gs.pk)
            continue
        message = gs.failure_message.removesuffix(CHECK_LATER) + NOTHING_HELD
        GuestSession.objects.filter(pk=gs.pk).update(failure_message=message)
        publish(gs.pk)


def guest_finish_unsettled(*, limit: int = 500, now: datetime | None = None) -> int:
    """Finish guest sessions whose charging ended but whose settlement never ran (a sweep), and
    send the receipts the mail server did not take."""
    receipts_resend(now=now or timezone.now())
    session_ids = list(
        GuestSession.objects.filter(
            state=GuestSession.State.CHARGING,
            charging_session__status=ChargingSession.Status.COMPLETED,
        ).values_list("charging_session_id", flat=True)[:limit]
    )
    done = 0
    for session_id in session_ids:
        try:
            done += guest_session_finish(session_id=session_id) is not None
        except Exception:  # one failing capture must not stop the sweep
            logger.exception("Settling guest session of session %s failed", session_id)
    return done


# A stop asked for less than this long ago is not sent again: a second tap or tab finds it under
# way (the page says "stopping") instead of a second RemoteStopTransaction the charger, already
# stopping, would refuse. A stop that failed is given back at once, so the guest can try again.
STOP_AGAIN_AFTER_S = 30


def guest_cancel_or_stop(*, gs: GuestSession) -> GuestSession:
    """Stop charging (RemoteStopTransaction), or cancel a start that has not begun (hold released).

    One stop at a time: the guest session's `stop_requested_at` is claimed by a conditional
    UPDATE before the command goes out. A stop the charger refuses or cannot take because it
    stopped by itself meanwhile (its own StopTransaction won the race) is no failure."""
    if gs.state in OPEN_BEFORE_START:
        return fail_and_release(gs, "cancelled", "You cancelled before charging started.")
    if gs.state != GuestSession.State.CHARGING:
        return gs
    session = gs.charging_session
    if session is None or session.status != ChargingSession.Status.ACTIVE:
        return gs
    now = timezone.now()
    claimed = (
        GuestSession.objects.filter(pk=gs.pk)
        .filter(
            Q(stop_requested_at__isnull=True)
            | Q(stop_requested_at__lt=now - timedelta(seconds=STOP_AGAIN_AFTER_S))
        )
        .update(stop_requested_at=now)
    )
    if claimed:
        failure = _stop_sent(gs, session)
        if failure is not None:
            GuestSession.objects.filter(pk=gs.pk, stop_requested_at=now).update(
                stop_requested_at=gs.stop_requested_at
            )
            if ChargingSession.objects.filter(
                pk=session.pk, status=ChargingSession.Status.ACTIVE
            ).exists():
                raise StopFailed(failure)
    gs.refresh_from_db()
    return gs


def _stop_sent(gs: GuestSession, session: ChargingSession) -> str | None:
    """Send the stop; None when the charger accepted it, else what the guest is told."""
    try:
        command = send_command_sync(
            gs.charger,
            "RemoteStopTransaction",
            {"transactionId": session.transaction_id},
            source="guest",
        )
    except ChargerOffline:
        return "The charger is offline right now. Unplug your car to end the session."
    except CommandTimeout:
        return "The charger did not answer. Unplug your car to end the session."
    if command.result_status != "Accepted":
        return "The charger refused to stop. Unplug your car to end the session."
    return None


def _guest_for(session: ChargingSession) -> GuestSession | None:
    return (
        GuestSession.objects.select_for_update()
        .filter(
            Q(charging_session=session) | Q(id_tag=session.id_tag, charger_id=session.charger_id)
        )
        .exclude(id_tag="")
        .order_by("-created_at")
        .first()
    )


def guest_sessions_starting_exist() -> bool:
    """Whether any guest is paying or starting anywhere (a start could be theirs)."""
    return GuestSession.objects.filter(state__in=OPEN_BEFORE_START).exists()


def guest_session_link(
    *, session_id: int, guests_starting: bool | None = None
) -> GuestSession | None:
    """Attach a StartTransaction to the guest start it answers (matched by the guest's idTag).
    `guests_starting`: `guest_sessions_starting_exist()` if the caller asked it already."""
    # Every start of every charger comes here and almost none is a guest's: a query that compiles
    # in no time says whether any guest is starting anywhere, a precise one whether this start is
    # theirs; the transaction that reads and locks (four round trips) only for a guest's start.
    if not (guest_sessions_starting_exist() if guests_starting is None else guests_starting):
        return None
    waiting = GuestSession.objects.filter(
        charger_id=OuterRef("charger_id"),
        id_tag=OuterRef("id_tag"),
        state__in=OPEN_BEFORE_START,
    ).exclude(id_tag="")
    if (
        not ChargingSession.objects.filter(pk=session_id, id_tag_status="Accepted")
        .filter(Exists(waiting))
        .exists()
    ):
        return None
    return _guest_session_link(session_id)


@transaction.atomic
def _guest_session_link(session_id: int) -> GuestSession | None:
    session = ChargingSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    gs = _guest_for(session)
    if gs is None or gs.state not in OPEN_BEFORE_START or session.id_tag_status != "Accepted":
        return None
    gs.charging_session = session
    gs.state = GuestSession.State.CHARGING
    gs.started_at = timezone.now()
    gs.save(update_fields=["charging_session", "state", "started_at"])
    # The price the guest agreed to is the price this session is billed with. A failure never
    # keeps the guest's page from "Charging": the session then has the price in force at the
    # start's arrival (billing's own receiver), which the guest was shown moments before.
    try:
        with transaction.atomic():
            payments.price_shown_attach(guest_session_id=gs.pk, session_id=session.pk)
    except Exception:
        logger.exception("Tying the price shown to guest session %s failed", gs.pk)
    transaction.on_commit(lambda: publish(gs.pk))
    return gs


def guest_sessions_unsettled_exist() -> bool:
    """Whether any guest session could still be settled by a session that finishes now: one
    paying, starting or charging (guest_session_finish does nothing for the others)."""
    return GuestSession.objects.filter(
        state__in=(*OPEN_BEFORE_START, GuestSession.State.CHARGING)
    ).exists()


def guest_session_finish(*, session_id: int) -> GuestSession | None:
    """Settle the payment of a finished guest session and email the receipt (idempotent).

    The capture is called between two transactions, never inside one: a failed capture leaves
    the guest session CHARGING, so the sweep (guest_finish_unsettled) tries again.
    """
    with transaction.atomic():
        session = ChargingSession.objects.filter(pk=session_id).first()
        if session is None or session.status != ChargingSession.Status.COMPLETED:
            return None
        gs = _guest_for(session)
        if gs is None or gs.state == GuestSession.State.FAILED:
            return None
        if gs.charging_session_id is None:  # the start signal was missed
            gs.charging_session = session
            gs.started_at = gs.started_at or timezone.now()
            gs.save(update_fields=["charging_session", "started_at"])
    if gs.payment_id:
        payments.settle(payment_id=gs.payment_id, session=session)
    with transaction.atomic():
        gs = GuestSession.objects.select_for_update().get(pk=gs.pk)
        if gs.state != GuestSession.State.FINISHED:
            gs.state = GuestSession.State.FINISHED
            gs.finished_at = gs.finished_at or timezone.now()
            gs.save(update_fields=["state", "finished_at"])
        if gs.token_id:
            Token.objects.filter(pk=gs.token_id).update(valid=False)
        send_receipt = gs.receipt_sent_at is None
        if send_receipt:
            GuestSession.objects.filter(pk=gs.pk).update(receipt_sent_at=timezone.now())
    if send_receipt and not receipt_email(gs=gs):
        # Not taken by the mail server: unmarked, so the sweep (receipts_resend) sends it.
        GuestSession.objects.filter(pk=gs.pk).update(receipt_sent_at=None)
    publish(gs.pk)
    return gs


# An unsent receipt is sent again by the sweep for this long after the session finished, and not
# before RECEIPT_RESEND_AFTER, so that it never races the first sending.
RECEIPT_RESEND_WITHIN = timedelta(days=7)
RECEIPT_RESEND_AFTER = timedelta(minutes=10)


def receipts_resend(*, now: datetime) -> int:
    """Email the receipts of finished sessions the mail server did not take; return how many."""
    unsent = (
        GuestSession.objects.filter(
            state=GuestSession.State.FINISHED,
            receipt_sent_at__isnull=True,
            finished_at__gte=now - RECEIPT_RESEND_WITHIN,
            finished_at__lte=now - RECEIPT_RESEND_AFTER,
        )
        .exclude(email="")
        .values_list("pk", flat=True)
    )
    return send_each_once(
        GuestSession,
        unsent[:200],
        field="receipt_sent_at",
        now=now,
        send=lambda pk: receipt_email(gs=GuestSession.objects.select_related("charger").get(pk=pk)),
    )


def receipt_url(gs: GuestSession) -> str:
    base = getattr(settings, "SITE_URL", "") or gs.site_url
    return f"{base.rstrip('/')}{reverse('guest:receipt', args=[gs.key])}"


def receipt_email(*, gs: GuestSession) -> bool:
    """Email the receipt with its line items and the link that stays valid; False when the
    mail server did not take it (logged; the session is closed all the same)."""
    from .receipts import receipt_context

    context = receipt_context(gs)
    context["url"] = receipt_url(gs)
    context["SITE_NAME"] = getattr(settings, "SITE_NAME", "")
    context["test_mode"] = settings.PAYMENT_GATEWAY == "sandbox" and gs.payment_id is not None
    body = render_to_string("guest/email_receipt.txt", context)
    try:
        send_mail(f"Your charging receipt – {gs.charger.station_id}", body, None, [gs.email])
    except Exception:
        logger.warning("Could not email the receipt of guest session %s", gs.pk, exc_info=True)
        return False
    return True
