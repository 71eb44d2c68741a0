"""Who alert emails may go to (issue 47 item 6): an address a rule names gets alerts only once it
is confirmed, and each confirmed address gets its own message.

An address equal to a verified account email of a member of the rule's organization is confirmed
at once (that person already proved it is theirs); any other address is emailed a confirmation
link first and gets alerts once someone clicks it (docs/reliability.md, "Alerts").
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from backoffice.resend import send_each_once

from ..models import AlertRecipient, AlertRule

MAX_INVITATIONS_PER_RUN = 50


def member_verified_emails(organization_id: int) -> set[str]:
    """The verified account emails (django-allauth) of the organization's members, lower case."""
    from allauth.account.models import EmailAddress

    return {
        email.lower()
        for email in EmailAddress.objects.filter(
            verified=True, user__memberships__organization_id=organization_id
        ).values_list("email", flat=True)
    }


def recipients_note(organization_id: int, emails: Iterable[str]) -> list[AlertRecipient]:
    """Make sure each address has its recipient row: a member's verified account email is
    confirmed, any other waits for its confirmation link (sent by `invitations_send`)."""
    wanted = {email.strip().lower() for email in emails if email and email.strip()}
    if not wanted:
        return []
    known = {
        r.email: r
        for r in AlertRecipient.objects.filter(organization_id=organization_id, email__in=wanted)
    }
    members = member_verified_emails(organization_id)
    now = timezone.now()
    for email in sorted(wanted - set(known)):
        row = AlertRecipient(
            organization_id=organization_id, email=email, key=secrets.token_urlsafe(32)
        )
        if email in members:
            row.confirmed_at, row.confirmed_how = now, "member_account"
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:  # written meanwhile by another request
            row = AlertRecipient.objects.get(organization_id=organization_id, email=email)
        known[email] = row
    for email, row in known.items():
        if row.confirmed_at is None and email in members:
            # A member who verified the address since it was named: confirmed now.
            AlertRecipient.objects.filter(pk=row.pk, confirmed_at__isnull=True).update(
                confirmed_at=now, confirmed_how="member_account"
            )
            row.confirmed_at, row.confirmed_how = now, "member_account"
        elif row.confirmed_how == "member_account" and email not in members:
            # Confirmed as a member's who has left: the address must confirm by its link now.
            AlertRecipient.objects.filter(pk=row.pk).update(
                confirmed_at=None, confirmed_how="", invited_at=None
            )
            row.confirmed_at, row.confirmed_how, row.invited_at = None, "", None
    return [known[email] for email in sorted(wanted)]


def rule_recipients_saved(rule: AlertRule, *, site_url: str = "") -> None:
    """After a rule is saved (API, admin): note its addresses; the confirmation links of new
    ones are emailed once the save is committed (`site_url`: the request's, without SITE_URL)."""
    recipients_note(rule.organization_id, rule.email or [])
    organization_id = rule.organization_id
    transaction.on_commit(lambda: invitations_send(organization_id, site_url=site_url))


def confirmed_among(organization_id: int, emails: list[str]) -> set[str]:
    """Of these addresses, the ones confirmed now: by their link, or as the verified account
    email of someone who is still a member (a member who left must confirm by the link)."""
    rows = AlertRecipient.objects.filter(
        organization_id=organization_id, email__in=emails, confirmed_at__isnull=False
    ).values_list("email", "confirmed_how")
    members: set[str] | None = None
    confirmed = set()
    for email, how in rows:
        if how == "member_account":
            if members is None:
                members = member_verified_emails(organization_id)
            if email not in members:
                continue
        confirmed.add(email)
    return confirmed


def confirmed_emails(rule: AlertRule) -> list[str]:
    """The rule's addresses that may get its alerts now, in the rule's order, each once."""
    named = [email.strip().lower() for email in rule.email or [] if email and email.strip()]
    if not named:
        return []
    confirmed = confirmed_among(rule.organization_id, named)
    return list(dict.fromkeys(email for email in named if email in confirmed))


def is_confirmed(organization_id: int, email: str) -> bool:
    email = email.strip().lower()
    return email in confirmed_among(organization_id, [email])


def confirm_url(recipient: AlertRecipient, site_url: str = "") -> str:
    """The link to email: on SITE_URL, else the site the rule was saved on (the sweep, without
    either, uses the address `make run` serves)."""
    base = (getattr(settings, "SITE_URL", "") or site_url or "http://localhost:8000").rstrip("/")
    return base + reverse("reliability:alert-recipient-confirm", args=[recipient.key])


def invitation_send(recipient: AlertRecipient, *, site_url: str = "") -> None:
    """Email the confirmation link (one message, to this address only)."""
    organization = recipient.organization.name
    body = (
        f"{organization} would like to email charger alerts (a charger offline, a port faulted, "
        f"…) to {recipient.email}.\n\n"
        f"To receive them, confirm this address:\n{confirm_url(recipient, site_url)}\n\n"
        "If you did not expect this, ignore this message: nothing will be sent to you."
    )
    send_mail(f"Confirm charger alerts from {organization}", body, None, [recipient.email])


def invitations_send(
    organization_id: int | None = None,
    limit: int = MAX_INVITATIONS_PER_RUN,
    *,
    site_url: str = "",
) -> int:
    """Send the confirmation links still to send (new addresses, and the ones named before
    confirmation existed); return how many were sent. Each link is claimed before it is mailed
    (`invited_at` set), so two runs at once (two sweeps overlapping, a save's run and the sweep)
    mail it once; a failed send is given back and tried on the next run."""
    pending = AlertRecipient.objects.filter(confirmed_at__isnull=True, invited_at__isnull=True)
    if organization_id is not None:
        pending = pending.filter(organization_id=organization_id)

    def send(pk: int) -> bool:
        recipient = AlertRecipient.objects.select_related("organization").filter(pk=pk).first()
        if recipient is None:
            return True  # removed meanwhile: nothing to send
        try:
            invitation_send(recipient, site_url=site_url)
        except Exception:  # noqa: BLE001 - the mail server may be away; the next run retries
            return False
        return True

    return send_each_once(
        AlertRecipient,
        pending.order_by("id").values_list("pk", flat=True)[:limit],
        field="invited_at",
        now=timezone.now(),
        send=send,
    )


def recipient_confirm(key: str) -> AlertRecipient | None:
    """Confirm the address of this link (idempotent); None for an unknown link."""
    recipient = AlertRecipient.objects.filter(key=key).select_related("organization").first()
    if recipient is None:
        return None
    if recipient.confirmed_at is None:
        AlertRecipient.objects.filter(pk=recipient.pk, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now(), confirmed_how="link"
        )
        recipient.refresh_from_db()
    return recipient
