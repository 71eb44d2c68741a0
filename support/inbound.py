"""Customers' email replies onto their ticket: one service for a raw-MIME mail hook and Mailgun.

A reply is matched to its ticket by In-Reply-To / References (the Message-IDs ticket_reply sent),
else by the ticket reference in the subject ("Re: your request #1A2B3C4D"), and attached only when
the sender is the ticket's customer. A reply that names a ticket but comes from another address is
quarantined for an agent (QuarantinedEmail); one that names no ticket is logged and dropped. Every
delivery is idempotent by Message-ID: a mail system's redelivery adds nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from typing import Any

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice import shared_cache, throttle

from .models import QuarantinedEmail, Ticket, TicketMessage

logger = logging.getLogger(__name__)

# A raw message is read up to this size; the text part comes first in practice, attachments
# beyond it are never needed (nothing but the text is kept).
MAX_RAW_BYTES = 5 * 1024 * 1024
# What is kept of a reply's text: enough for any written answer, not a pasted log dump.
MAX_BODY_CHARS = 20_000
# Mailgun's timestamp must be this fresh (seconds); its tokens are remembered twice as long.
MAILGUN_MAX_AGE_S = 15 * 60

_REFERENCE = re.compile(r"#([0-9A-F]{8})\b", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]{1,198}>")
# Where a mail client starts quoting the previous message.
_ATTRIBUTION = re.compile(
    r"^\s*(On\b.{0,300}\bwrote:|Le\b.{0,300}\ba écrit\s?:|Am\b.{0,300}\bschrieb\b.{0,80}:)\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(-{2,}\s*Original Message\s*-{2,}|_{10,}|-{2,}\s*Forwarded message\s*-{2,})\s*$",
    re.IGNORECASE,
)
_OUTLOOK_HEADER = re.compile(r"^\s*\*?(From|De|Von):\*?\s", re.IGNORECASE)
_OUTLOOK_FOLLOW = re.compile(r"^\s*\*?(Sent|Date|To|Subject|Envoyé|Gesendet):\*?\s", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedEmail:
    """What the service needs of an inbound email, whichever transport brought it."""

    message_id: str
    from_address: str
    to_address: str
    subject: str
    body: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()


def _clean(text: str, limit: int) -> str:
    # PostgreSQL text refuses NUL; a mail may carry them anyway.
    return text.replace("\x00", "")[:limit]


def _message_ids(value: str) -> list[str]:
    """Return the <id@host> tokens of a Message-ID / In-Reply-To / References value."""
    value = _clean(value or "", 20_000)
    found = _MSGID.findall(value)
    if not found and "@" in value.strip() and " " not in value.strip():
        found = [f"<{value.strip()[:196]}>"]  # a bare id, as some relays pass Message-Id
    return found


def strip_quoted(text: str) -> str:
    """Return the reply's own words: without the quoted previous message and the signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        joined = f"{line} {lines[i + 1]}" if i + 1 < len(lines) else line
        if _SEPARATOR.match(line) or _ATTRIBUTION.match(line) or line.rstrip() == "--":
            break
        if (
            line.startswith("On ")
            and not line.rstrip().endswith(":")
            and _ATTRIBUTION.match(joined)
        ):
            break  # "On Mon, 3 Jun 2026 at 10:42, Support <…>\nwrote:" split over two lines
        if _OUTLOOK_HEADER.match(line) and any(
            _OUTLOOK_FOLLOW.match(nxt) for nxt in lines[i + 1 : i + 5]
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    own = "\n".join(kept).strip()
    # Only quoted text (an answer written inline between quotes is kept whole): keep everything.
    return own or text.strip()


# One tag (or comment, doctype, processing instruction) without "<" or ">" inside. Possessive, so
# a hostile body ("<script" or '<a b="' repeated) is scanned once: lazy patterns, strip_tags and
# html.parser took seconds to minutes on 100 KB of it, and strip_tags raises SuspiciousOperation.
_TAG = re.compile(r"<(?:(/?)([a-z][a-z0-9]*+)([^<>]*+)|[!?][^<>]*+)>", re.IGNORECASE)
_HIDDEN = frozenset({"script", "style", "head", "blockquote"})
_LINE_ENDS = frozenset({"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
_QUOTE_CLASS = re.compile(r"gmail_quote|moz-cite-prefix", re.IGNORECASE)


def _visible_parts(markup: str) -> list[str]:
    """The text between tags outside hidden blocks, a newline per line break, up to a quote."""
    parts: list[str] = []
    depth = dict.fromkeys(_HIDDEN, 0)  # open hidden blocks by tag (nested blockquotes)
    position = 0
    for tag in _TAG.finditer(markup):
        hidden = any(depth.values())
        if not hidden:
            parts.append(markup[position : tag.start()])
        position = tag.end()
        closing, name = tag.group(1) == "/", (tag.group(2) or "").lower()
        if not closing and name == "div" and _QUOTE_CLASS.search(tag.group(3)):
            return parts  # Gmail's and Thunderbird's quote of the previous message: the rest
        if name in depth:
            depth[name] = max(depth[name] + (-1 if closing else 1), 0)
        elif not hidden and (name == "br" or (closing and name in _LINE_ENDS)):
            parts.append("\n")
    if not any(depth.values()):
        parts.append(markup[position:])
    return parts


def html_to_text(markup: str) -> str:
    """Return the visible text of an HTML mail body, without quoted blocks."""
    text = html.unescape("".join(_visible_parts(markup)))
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


def _address(value: str) -> str:
    return _clean(parseaddr(value or "")[1].strip(), 254)


def _mime_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)
        content = (
            payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
        )
    if not isinstance(content, str):
        content = content.decode("utf-8", "replace") if isinstance(content, bytes) else ""
    content = _clean(content, MAX_BODY_CHARS * 5)
    return html_to_text(content) if part.get_content_subtype() == "html" else strip_quoted(content)


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except Exception:  # a header the default policy cannot fold: treat as absent
        logger.info("Unreadable %s header in an inbound email", name, exc_info=True)
        return ""


def parse_mime(raw: bytes) -> ParsedEmail:
    """Parse a raw RFC 5322 message (what a Postfix pipe or an MDA hands over)."""
    message = BytesParser(policy=policy.default).parsebytes(raw[:MAX_RAW_BYTES])
    assert isinstance(message, EmailMessage)
    ids = _message_ids(_header(message, "Message-ID"))
    in_reply_to = _message_ids(_header(message, "In-Reply-To"))
    tos = getaddresses([_header(message, "To")])
    return ParsedEmail(
        message_id=ids[0] if ids else "",
        from_address=_address(_header(message, "From")),
        to_address=_clean(tos[0][1], 254) if tos else "",
        subject=_clean(_header(message, "Subject"), 300),
        body=_clean(_mime_text(message), MAX_BODY_CHARS),
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=tuple(_message_ids(_header(message, "References"))),
    )


def parse_mailgun(fields: Mapping[str, Any]) -> ParsedEmail:
    """Parse Mailgun's inbound route POST (its form fields, as documented for "forward")."""

    def get(name: str) -> str:
        return _clean(str(fields.get(name, "") or ""), MAX_BODY_CHARS * 5)

    # Mailgun has already cut the quote and signature in stripped-text; body-plain is the fallback.
    body = get("stripped-text").strip() or strip_quoted(get("body-plain"))
    if not body.strip():
        body = html_to_text(get("stripped-html") or get("body-html"))
    ids = _message_ids(get("Message-Id"))
    in_reply_to = _message_ids(get("In-Reply-To"))
    return ParsedEmail(
        message_id=ids[0] if ids else "",
        # The From header (what the customer's client shows), else the envelope sender.
        from_address=_address(get("from") or get("From") or get("sender")),
        to_address=_address(get("recipient")),
        subject=_clean(get("subject") or get("Subject"), 300),
        body=_clean(body, MAX_BODY_CHARS),
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=tuple(_message_ids(get("References"))),
    )


def mailgun_signature_valid(
    *, signing_key: str, timestamp: str, token: str, signature: str, now: float
) -> bool:
    """Return whether Mailgun signed this (HMAC-SHA256 of timestamp + token with the signing key)
    and the timestamp is fresh."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - stamp) > MAILGUN_MAX_AGE_S or not token or not signature:
        return False
    expected = hmac.new(
        signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    # As bytes: compare_digest refuses str with non-ASCII characters (a forger's "é" was a 500).
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def mailgun_token_first_use(token: str) -> bool:
    """Remember a signed token; return False if it was already used.

    Mailgun's signature covers the timestamp and token only, not the fields: a captured request
    replayed with other fields would verify, so each token is accepted once (the shared cache, Redis
    in production, sees every process)."""
    key = "support-inbound:mailgun-token:" + hashlib.sha256(token.encode()).hexdigest()
    timeout = 2 * MAILGUN_MAX_AGE_S
    # While Redis is down this process remembers the tokens (a reply is not lost meanwhile).
    return shared_cache.use(
        lambda store: bool(store.add(key, 1, timeout=timeout)),
        lambda: bool(throttle.fallback.add(key, 1, timeout=timeout)),
    )


def _fallback_message_id(email: ParsedEmail) -> str:
    # No Message-ID (rare, broken clients): one derived from the content, so a redelivery of the
    # same mail still matches itself.
    digest = hashlib.sha256(
        "\n".join(
            [
                email.from_address,
                email.subject,
                email.in_reply_to,
                " ".join(email.references),
                email.body,
            ]
        ).encode()
    ).hexdigest()[:40]
    return f"<{digest}@inbound.invalid>"


def ticket_for(email: ParsedEmail) -> Ticket | None:
    """Return the ticket an email answers: by its thread headers first, else by the subject."""
    ids = [i for i in (email.in_reply_to, *email.references) if i]
    if ids:
        earlier = (
            TicketMessage.objects.filter(message_id__in=ids)
            .select_related("ticket")
            .order_by("-created_at", "-id")
            .first()
        )
        if earlier is not None:
            return earlier.ticket
    match = _REFERENCE.search(email.subject)
    if match:
        return Ticket.objects.filter(reference=match.group(1).upper()).first()
    return None


def _is_duplicate(message_id: str) -> bool:
    return (
        TicketMessage.objects.filter(message_id=message_id).exists()
        or QuarantinedEmail.objects.filter(message_id=message_id).exists()
    )


def receive_email(email: bytes | ParsedEmail, *, transport: str = "mime") -> TicketMessage | None:
    """Attach a customer's reply to its ticket and reopen the ticket; return the new message.

    Return None when nothing was attached: a redelivery (same Message-ID), mail about no ticket
    (logged), or a sender who is not the ticket's customer (quarantined for an agent).
    """
    parsed = parse_mime(email) if isinstance(email, bytes) else email
    message_id = parsed.message_id or _fallback_message_id(parsed)
    if _is_duplicate(message_id):
        logger.info("Inbound email %s already received: ignored", message_id)
        return None
    ticket = ticket_for(parsed)
    if ticket is None:
        logger.info(
            "Inbound email %s from %s names no ticket: dropped", message_id, parsed.from_address
        )
        return None
    if not ticket.email or parsed.from_address.casefold() != ticket.email.strip().casefold():
        _quarantine(parsed, message_id=message_id, ticket=ticket, transport=transport)
        return None
    try:
        with transaction.atomic():
            message = TicketMessage.objects.create(
                ticket=ticket,
                direction=TicketMessage.Direction.IN,
                from_email=parsed.from_address,
                to_email=parsed.to_address,
                subject=parsed.subject or f"Reply on #{ticket.reference}",
                body=parsed.body,
                message_id=message_id,
                delivered=True,
                in_reply_to=parsed.in_reply_to
                or (parsed.references[-1] if parsed.references else ""),
            )
            _reopen(ticket)
    except IntegrityError:  # the same mail delivered twice at once: the other delivery stored it
        logger.info("Inbound email %s stored by a concurrent delivery", message_id)
        return None
    logger.info("Customer reply %s attached to ticket %s", message_id, ticket.reference)
    transaction.on_commit(lambda: notify_assignee(message_id=message.pk))
    return message


def notify_assignee(*, message_id: int) -> None:
    """Tell the ticket's agent the customer answered (best effort: the ticket is reopened anyway)."""
    message = TicketMessage.objects.select_related("ticket__assigned_to").get(pk=message_id)
    agent = message.ticket.assigned_to
    if agent is None or not agent.email:
        return
    ticket = message.ticket
    body = (
        f"The customer answered on ticket #{ticket.reference} (now in progress again):\n\n"
        f"{message.body[:2000]}\n\nOpen the ticket in the admin to reply.\n"
    )
    try:
        # No Reply-To: an agent answering this would write to the customer's inbound address as a stranger.
        send_mail(f"Customer replied on #{ticket.reference}", body, None, [agent.email])
    except Exception:
        logger.warning(
            "Could not tell %s about the reply on ticket %s",
            agent.email,
            ticket.reference,
            exc_info=True,
        )


def _reopen(ticket: Ticket) -> None:
    # The customer answered: the ticket needs an agent again, whatever it was waiting for.
    ticket.status = Ticket.Status.OPEN
    ticket.save(update_fields=["status", "updated_at"])


def _quarantine(parsed: ParsedEmail, *, message_id: str, ticket: Ticket, transport: str) -> None:
    logger.warning(
        "Inbound email %s names ticket %s but comes from %r, not its customer: quarantined",
        message_id,
        ticket.reference,
        parsed.from_address,
    )
    try:
        with transaction.atomic():
            QuarantinedEmail.objects.create(
                message_id=message_id,
                transport=transport[:10],
                from_email=parsed.from_address,
                to_email=parsed.to_address,
                subject=parsed.subject,
                body=parsed.body,
                ticket=ticket,
                reason=QuarantinedEmail.Reason.SENDER_MISMATCH,
            )
    except IntegrityError:
        pass  # a concurrent redelivery quarantined it already


@transaction.atomic
def quarantined_attach(*, quarantined: QuarantinedEmail, user: Any) -> TicketMessage:
    """Attach a quarantined email to the ticket it names, once an agent has checked the sender."""
    locked = (
        QuarantinedEmail.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .get(pk=quarantined.pk)
    )
    if locked.attached_message_id is not None:
        raise ValueError("This email is already on its ticket.")
    if locked.ticket is None:
        raise ValueError("The ticket this email named no longer exists.")
    message = TicketMessage.objects.create(
        ticket=locked.ticket,
        direction=TicketMessage.Direction.IN,
        author=None,
        from_email=locked.from_email[:254],
        to_email=locked.to_email[:254],
        subject=locked.subject or f"Reply on #{locked.ticket.reference}",
        body=locked.body,
        message_id=locked.message_id,
        delivered=True,
    )
    locked.attached_message, locked.attached_by = message, user
    locked.save(update_fields=["attached_message", "attached_by"])
    ticket = locked.ticket
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M")
    who = getattr(user, "get_username", lambda: "system")()
    note = f"[{stamp} {who}] Attached an email from {locked.from_email} (not the ticket's address) after checking it"
    ticket.agent_notes = (ticket.agent_notes + "\n" if ticket.agent_notes else "") + note
    ticket.status = Ticket.Status.OPEN
    ticket.save(update_fields=["agent_notes", "status", "updated_at"])
    quarantined.refresh_from_db()
    return message
