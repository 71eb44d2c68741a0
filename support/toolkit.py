"""The support agent's one-click actions from a ticket, each through the owning app's service.

Reply by email (threaded with Message-ID / In-Reply-To, logged on the ticket), an override session
at the ticket's charger, whitelisting a UID into a token group, a refund with a confirmation email,
and reset / unlock. Every action is noted on the ticket; the audit log (django-auditlog) records
the rows they change with the agent as actor.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from authorization.models import TokenGroup
from authorization.services import token_group_add_uid
from billing.models import Payment, Refund, Subscription
from billing.money import round_money
from billing.services import refund_issue
from chargers.devices import commands
from chargers.devices.remote import operator_remote_start_sync
from chargers.models import Charger, Command

from .models import AssistantConversation, QuarantinedEmail, Ticket, TicketMessage

logger = logging.getLogger(__name__)


class ActionFailed(Exception):
    """An action the charger, the engine or the processor refused: the message says why."""


def _note(ticket: Ticket, user: Any, text: str) -> None:
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M")
    who = getattr(user, "get_username", lambda: "system")()
    with transaction.atomic():
        # Appended to the notes as saved now, under the ticket's lock: two agents acting on one
        # ticket at once (a refund and a reset) both keep their line.
        saved = (
            Ticket.objects.select_for_update()
            .filter(pk=ticket.pk)
            .values_list("agent_notes", flat=True)
            .first()
        )
        notes = saved if saved is not None else ticket.agent_notes
        ticket.agent_notes = (notes + "\n" if notes else "") + f"[{stamp} {who}] {text}"
        ticket.save(update_fields=["agent_notes", "updated_at"])


def _domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(">") or "localhost"


def ticket_reply(
    *, ticket: Ticket, user: Any, body: str, status: str = Ticket.Status.WAITING
) -> TicketMessage:
    """Email the customer from the ticket, threaded on the previous message, and log it."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Write the reply."})
    if not ticket.email:
        raise ValidationError({"body": "The ticket has no customer email to reply to."})
    message_id = make_msgid(f"ticket-{ticket.reference}", domain=_domain())
    subject = f"Re: your request #{ticket.reference}"
    with transaction.atomic():
        # Under the ticket's lock: "Send" pressed twice (a double click, a resubmitted page)
        # finds its own reply as the thread's last message and sends nothing more.
        list(Ticket.objects.select_for_update().filter(pk=ticket.pk).values_list("pk"))
        previous = ticket.thread.order_by("-created_at", "-id").first()
        if _same_reply(previous, user, body):
            assert previous is not None  # _same_reply is False without one
            return previous
        reply = TicketMessage.objects.create(
            ticket=ticket,
            direction=TicketMessage.Direction.OUT,
            author=user,
            to_email=ticket.email,
            from_email=settings.DEFAULT_FROM_EMAIL,
            subject=subject,
            body=body,
            message_id=message_id,
            in_reply_to=previous.message_id if previous else "",
        )
    headers = {"Message-ID": message_id, "X-Ticket": ticket.reference}
    if previous:
        headers["In-Reply-To"] = previous.message_id
        headers["References"] = " ".join(m.message_id for m in ticket.thread.exclude(pk=reply.pk))
    email = EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        [ticket.email],
        headers=headers,
        reply_to=[getattr(settings, "SUPPORT_INBOUND_EMAIL", "") or settings.DEFAULT_FROM_EMAIL],
    )
    try:
        email.send()
        reply.delivered = True
    except Exception as exc:  # logged on the ticket; the agent sees it did not go out
        logger.warning("Reply on ticket %s not sent", ticket.reference, exc_info=True)
        reply.error = str(exc)[:300]
    reply.save(update_fields=["delivered", "error"])
    ticket.status = status
    if ticket.assigned_to_id is None and user is not None:
        ticket.assigned_to = user
    ticket.save(update_fields=["status", "assigned_to", "updated_at"])
    return reply


def _same_reply(previous: TicketMessage | None, user: Any, body: str) -> bool:
    """Whether the thread's last message is this agent's reply with this text (sent already)."""
    return (
        previous is not None
        and previous.direction == TicketMessage.Direction.OUT
        and previous.author_id == getattr(user, "pk", None)
        and previous.body == body
    )


def ticket_override_start(
    *, ticket: Ticket, charger: Charger, connector_id: int, uid: str, user: Any
) -> Command:
    """Start a session for the customer at the ticket's charger with the given card or an operator
    token made for this ticket; the decision and the command are real and noted on the ticket."""
    label = f"Support override for ticket #{ticket.reference}"
    try:
        token, decision, command = operator_remote_start_sync(
            charger,
            connector_id=connector_id,
            uid=uid or f"SUPPORT-{ticket.reference}",
            label=label,
            source="support",
            user_id=getattr(user, "pk", None),
        )
    except ValueError as exc:
        raise ActionFailed(str(exc)) from exc
    except commands.ChargerOffline as exc:
        raise ActionFailed(f"{charger.station_id} is offline: nothing was sent.") from exc
    except commands.CommandTimeout as exc:
        raise ActionFailed(
            f"{charger.station_id} did not answer RemoteStartTransaction in time."
        ) from exc
    except commands.InvalidCommand as exc:
        raise ActionFailed(exc.error.description) from exc
    if command is None:
        _note(
            ticket,
            user,
            f"Override start at {charger.station_id}/{connector_id} with {token.uid} refused: {decision.message}",
        )
        raise ActionFailed(
            f"{token.uid} is refused at {charger.station_id} ({decision.reason}): {decision.message}"
        )
    ticket.details = {
        **ticket.details,
        "override": {
            "station_id": charger.station_id,
            "connector_id": connector_id,
            "id_tag": token.uid,
            "command_id": command.pk,
            "result": command.result_status or command.status,
            "at": timezone.now().isoformat(),
        },
    }
    ticket.save(update_fields=["details", "updated_at"])
    _note(
        ticket,
        user,
        f"Override start at {charger.station_id}/{connector_id} with {token.uid}: "
        f"charger answered {command.result_status or command.status} (command {command.pk})",
    )
    if command.result_status != "Accepted":
        raise ActionFailed(f"The charger answered {command.result_status or command.status}.")
    return command


def ticket_whitelist(*, ticket: Ticket, group: TokenGroup, uid: str, user: Any) -> None:
    """Whitelist a card UID into a local token group of the ticket's organization."""
    if ticket.organization_id is not None and group.organization_id != ticket.organization_id:
        raise ValidationError({"group": "Pick a token group of the ticket's organization."})
    if not uid.strip():
        raise ValidationError({"uid": "Enter the card UID."})
    token = token_group_add_uid(group=group, uid=uid)
    _note(ticket, user, f"Whitelisted {token.uid} into token group {group.name}")


# A refund asked from a ticket: its idempotency key names the ticket (ticket_refund_booked).
REFUND_KEY_PREFIX = "ticket:"


def ticket_refund(
    *, ticket: Ticket, payment: Payment, amount: Decimal, reason: str, user: Any
) -> Refund:
    """Refund part or all of a payment and email the customer a confirmation."""
    if ticket.organization_id is not None and payment.organization_id != ticket.organization_id:
        raise ValidationError({"payment": "That payment is not of the ticket's organization."})
    refund = refund_issue(
        payment=payment,
        amount=amount,
        reason=reason,
        source=Refund.Source.SUPPORT,
        user=user,
        idempotency_key=f"{REFUND_KEY_PREFIX}{ticket.pk}:{payment.pk}:{amount}",
        notify_payer=False,  # the confirmation below, threaded on the ticket, is the payer's mail
    )
    _refund_confirm(ticket=ticket, payment=payment, refund=refund, user=user, reason=reason)
    return refund


def ticket_refund_booked(*, refund_id: int, idempotency_key: str) -> None:
    """A refund asked from a ticket was booked, maybe by the periodic settle after the
    processor's answer had been lost: the customer's confirmation and the ticket's note now,
    once (the same as when the agent's own request books it)."""
    if not idempotency_key.startswith(REFUND_KEY_PREFIX):
        return
    ticket_pk = idempotency_key[len(REFUND_KEY_PREFIX) :].split(":", 1)[0]
    ticket = Ticket.objects.filter(pk=int(ticket_pk)).first() if ticket_pk.isdigit() else None
    refund = Refund.objects.select_related("payment", "created_by").filter(pk=refund_id).first()
    if ticket is None or refund is None:
        return
    _refund_confirm(
        ticket=ticket,
        payment=refund.payment,
        refund=refund,
        user=refund.created_by,
        reason=refund.reason,
    )


def _refund_confirm(
    *, ticket: Ticket, payment: Payment, refund: Refund, user: Any, reason: str
) -> None:
    # The refund's confirmation has one Message-ID (TicketMessage.message_id is unique): the
    # same refund asked twice (two agents, a double click) gets the first refund back from
    # refund_issue's idempotency key, and here the first confirmation: no second note or email.
    message_id = f"<refund-{refund.pk}.ticket-{ticket.reference}@{_domain()}>"
    if TicketMessage.objects.filter(message_id=message_id).exists():
        return
    payment.refresh_from_db()  # the refund's total, for the net amount in the email
    to = payment.email or ticket.email
    message = None
    if to:
        body = render_to_string(
            "support/email_refund_confirmation.txt",
            {
                "ticket": ticket,
                "payment": payment,
                "refund": refund,
            },
        )
        try:
            with transaction.atomic():
                previous = ticket.thread.order_by("-created_at", "-id").first()
                message = TicketMessage.objects.create(
                    ticket=ticket,
                    direction=TicketMessage.Direction.OUT,
                    author=user,
                    to_email=to,
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    subject=f"Your refund for request #{ticket.reference}",
                    body=body,
                    message_id=message_id,
                    in_reply_to=previous.message_id if previous else "",
                )
        except IntegrityError:  # the same refund confirmed by a request running at once
            return
    text = (
        f"Refunded {round_money(refund.amount, payment.currency)} {payment.currency} of payment "
        f"{payment.reference}: {reason}"
    )
    if message is None and Ticket.objects.filter(pk=ticket.pk, agent_notes__contains=text).exists():
        return  # no email to thread it by: the note itself says it was confirmed
    _note(ticket, user, text)
    if message is not None:
        try:
            EmailMessage(
                message.subject,
                message.body,
                settings.DEFAULT_FROM_EMAIL,
                [to],
                headers={"Message-ID": message.message_id},
            ).send()
            message.delivered = True
        except Exception as exc:
            message.error = str(exc)[:300]
        message.save(update_fields=["delivered", "error"])


def ticket_charger_command(
    *, ticket: Ticket, charger: Charger, action: str, connector_id: int, user: Any
) -> Command:
    """Reset (soft/hard) or unlock a connector of the ticket's charger."""
    payloads: dict[str, tuple[str, dict[str, Any]]] = {
        "soft_reset": ("Reset", {"type": "Soft"}),
        "hard_reset": ("Reset", {"type": "Hard"}),
        "unlock": ("UnlockConnector", {"connectorId": connector_id}),
    }
    if action not in payloads:
        raise ValidationError({"action": "Unknown action."})
    ocpp_action, payload = payloads[action]
    try:
        command = commands.send_command_sync(
            charger, ocpp_action, payload, source="support", user_id=getattr(user, "pk", None)
        )
    except commands.ChargerOffline as exc:
        raise ActionFailed(f"{charger.station_id} is offline: nothing was sent.") from exc
    except commands.CommandTimeout as exc:
        raise ActionFailed(f"{charger.station_id} did not answer {ocpp_action} in time.") from exc
    except commands.InvalidCommand as exc:
        raise ActionFailed(exc.error.description) from exc
    _note(
        ticket,
        user,
        f"{ocpp_action} {payload} at {charger.station_id}: {command.result_status or command.status}",
    )
    return command


# -- identity, email change, erasure (seed 003 §6 and §7) ---------------------------------------


def ticket_verify_identity(
    *, ticket: Ticket, user: Any, session_date: Any = None, card_last4: str = ""
) -> bool:
    """Check the customer is who the ticket's email says: a session of theirs on that date, or a
    payment with a card ending in those digits (seed 003 §7). Record the outcome on the ticket."""
    if not ticket.email:
        raise ValidationError({"card_last4": "The ticket has no customer email to verify against."})
    if not session_date and not card_last4.strip():
        raise ValidationError(
            {"card_last4": "Give a recent session date or the card's last 4 digits."}
        )
    payments = Payment.objects.filter(email__iexact=ticket.email)
    checks = []
    if session_date:
        checks.append(payments.filter(session__started_at__date=session_date).exists())
    if card_last4.strip():
        checks.append(payments.filter(card_last4=card_last4.strip()).exists())
    verified = all(checks)
    by = " and ".join(
        p for p, v in (("session date", session_date), ("card last 4", card_last4.strip())) if v
    )
    ticket.details = {
        **ticket.details,
        "identity_verified": {
            "ok": verified,
            "by": by,
            "at": timezone.now().isoformat(),
            "agent": getattr(user, "pk", None),
        },
    }
    ticket.save(update_fields=["details", "updated_at"])
    _note(ticket, user, f"Identity check by {by}: {'verified' if verified else 'NOT verified'}")
    return verified


def _require_verified(ticket: Ticket) -> None:
    if not (ticket.details or {}).get("identity_verified", {}).get("ok"):
        raise ValidationError({"__all__": "Verify the customer's identity first."})


def _send(subject: str, body: str, to: str) -> None:
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to]).send()
    except Exception:
        logger.warning("Could not send %r to the customer", subject, exc_info=True)


def uses_email_addresses(account: Any) -> bool:
    """Whether the account signs in through allauth's addresses (a driver) rather than a username."""
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=account).exists()


def agent_change_driver_email(*, request: Any, account: Any, new_email: str) -> None:
    """Change a driver's email the way they would themselves (ACCOUNT_CHANGE_EMAIL): allauth adds
    the new address and sends it a verification link; once confirmed it replaces the old one, allauth
    tells the old address, and drivers.services.driver_email_changed moves receipts and plans. Until
    then the old address still signs in, as in self-service. The old address hears of the request
    now, so a change nobody asked for is caught."""
    from allauth.account.models import EmailAddress

    new_email = new_email.strip().lower()
    old = str(account.email or "")
    if EmailAddress.objects.filter(email__iexact=new_email).exclude(user=account).exists():
        raise ValidationError({"email": "Another account already uses that email."})
    from allauth.core import context

    # allauth builds the link from its own request context (its middleware sets it for its views).
    with context.request_context(request):
        EmailAddress.objects.add_new_email(request, account, new_email)
    if old:
        transaction.on_commit(
            lambda: _send(
                "A change of your email was requested",
                f"Hello,\n\nSupport started changing your account's email from {old} to {new_email}. "
                f"It takes effect when the link sent to {new_email} is opened; until then {old} still "
                "signs in.\nIf you did not ask for this, reply to this email at once.\n",
                old,
            )
        )


def sign_in_name(*, username: str, old_email: str, new_email: str) -> str:
    """Return the username an account should have once its email changes from `old_email`.

    Hosts sign in with their email as username (backoffice.auth lower-cases the login), so when the
    username is the old email it follows the new one, lower-cased; otherwise it is kept. Changing
    only the email left sign-in on the old address (issue 16).
    """
    if old_email and new_email and username.strip().lower() == old_email.strip().lower():
        return new_email.strip().lower()
    return username


@transaction.atomic
def ticket_change_email(*, ticket: Ticket, user: Any, new_email: str, request: Any = None) -> int:
    """Move the verified customer's email to `new_email` everywhere it identifies them: payments,
    subscriptions, tickets, and a host's sign-in (username and email together, so sign-in moves
    too). Notify the old address and confirm to the new one. Return the rows changed.

    A driver's account changes through allauth instead (agent_change_driver_email, the path of
    their own change): nothing moves until they open the link sent to the new address. Return 0
    then; `request` is the agent's (allauth builds the link from it)."""
    _require_verified(ticket)
    old = ticket.email
    new_email = new_email.strip()
    if not new_email or new_email.lower() == old.lower():
        raise ValidationError({"new_email": "Give a different email address."})
    users = get_user_model().objects
    if (
        users.filter(email__iexact=new_email).exists()
        or users.filter(username__iexact=new_email).exists()
    ):
        raise ValidationError({"new_email": "Another account already uses that email."})
    driver = next((a for a in users.filter(email__iexact=old) if uses_email_addresses(a)), None)
    if driver is not None:
        if request is None:
            raise ValidationError({"new_email": "A driver's email changes from the admin page."})
        try:
            agent_change_driver_email(request=request, account=driver, new_email=new_email)
        except ValidationError as exc:
            raise ValidationError({"new_email": exc.messages}) from exc
        _note(
            ticket,
            user,
            f"Email change from {old} to {new_email} started: verification link sent to "
            f"{new_email}, {old} told; it takes effect when the driver opens the link",
        )
        return 0
    changed = 0
    changed += Payment.objects.filter(email__iexact=old).update(email=new_email)
    changed += Subscription.objects.filter(email__iexact=old).update(email=new_email)
    changed += Ticket.objects.filter(email__iexact=old).update(email=new_email)
    for account in users.filter(email__iexact=old):
        account.username = sign_in_name(
            username=account.get_username(), old_email=old, new_email=new_email
        )
        account.email = new_email
        account.save()
        changed += 1
    ticket.refresh_from_db()
    _note(ticket, user, f"Email changed from {old} to {new_email} ({changed} records)")
    transaction.on_commit(
        lambda: _send(
            f"Your email was changed (request #{ticket.reference})",
            f"Hello,\n\nAt your request (#{ticket.reference}) we changed your email from {old} to {new_email}.\n"
            "If you did not ask for this, reply to this email at once.\n",
            old,
        )
    )
    transaction.on_commit(
        lambda: _send(
            f"Your email is now {new_email}",
            f"Hello,\n\nYour request #{ticket.reference} is done: receipts, subscriptions and sign-in now use "
            f"{new_email}.\n",
            new_email,
        )
    )
    return changed


@transaction.atomic
def ticket_erase_customer(*, ticket: Ticket, user: Any) -> int:
    """Erase the verified customer's personal data: their email on payments (the amounts and the
    ledger stay, without personal data), subscriptions cancelled and anonymised, their tickets',
    emails' and conversations' contact details. Confirm by email first. Return the rows changed."""
    _require_verified(ticket)
    email = ticket.email
    _send(
        f"Your data was deleted (request #{ticket.reference})",
        f"Hello,\n\nAt your request (#{ticket.reference}) we deleted your personal data: your email, name and "
        "phone on payments, subscriptions and support requests. Amounts we must keep for accounting and tax "
        "are kept without anything that identifies you.\n",
        email,
    )
    now = timezone.now()
    changed = Payment.objects.filter(email__iexact=email).update(email="")
    for sub in Subscription.objects.filter(email__iexact=email):
        sub.email = f"erased-{sub.pk}@erased.invalid"
        if sub.status == Subscription.Status.ACTIVE:
            sub.status, sub.cancelled_at, sub.ends_at = Subscription.Status.CANCELLED, now, now
        sub.save()
        changed += 1
    changed += AssistantConversation.objects.filter(email__iexact=email).update(
        email="", details={}, messages=[]
    )
    # Their emails: the thread's addresses and words (replies by email land there), and any reply of
    # theirs held in quarantine (support.inbound).
    changed += TicketMessage.objects.filter(
        Q(from_email__iexact=email) | Q(to_email__iexact=email)
    ).update(
        from_email="",
        to_email="",
        body="(erased at the customer's request)",
    )
    changed += QuarantinedEmail.objects.filter(from_email__iexact=email).delete()[0]
    changed += Ticket.objects.filter(email__iexact=email).update(
        email="",
        name="",
        phone="",
        message="(erased at the customer's request)",
        details={},
        client_ip=None,
    )
    ticket.refresh_from_db()
    _note(ticket, user, f"Customer data erased ({changed} records)")
    return changed


def ticket_license_activate(*, ticket: Ticket, user: Any) -> str:
    """Activate the license of the ticket's charger within the plan (billing.licenses: the host
    pays the plan's price from its balance), note it, and answer the host by email with the
    ticket resolved: the request comes back as a notification. Returns the answer's text."""
    from billing.licenses import LicenseRefused, license_activate

    if ticket.charger_id is None:
        raise ActionFailed("The ticket names no charger.")
    try:
        offer = license_activate(charger_id=ticket.charger_id, by_support=True)
    except LicenseRefused as exc:
        raise ActionFailed(str(exc)) from exc
    assert offer.valid_from and offer.valid_until and offer.price is not None
    charger = Charger.objects.get(pk=ticket.charger_id)
    cost = (
        f" {round_money(offer.price, offer.currency)} {offer.currency} is deducted from your balance and shows on "
        "your next payout as “Charger license”."
        if offer.price > 0
        else ""
    )
    text = (
        f"The license of charger {charger.station_id} is active from "
        f"{offer.valid_from:%d %b %Y} until {offer.valid_until:%d %b %Y}: it can charge now.{cost}"
    )
    _note(ticket, user, text)
    if ticket.email:
        ticket_reply(ticket=ticket, user=user, body=text, status=Ticket.Status.RESOLVED)
    else:
        ticket.status = Ticket.Status.RESOLVED
        ticket.save(update_fields=["status", "updated_at"])
    return text
