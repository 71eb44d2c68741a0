"""Writes for support tickets."""

from __future__ import annotations

import logging
from datetime import datetime

from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from .models import Ticket
from .selectors import charger_context

logger = logging.getLogger(__name__)


@transaction.atomic
def ticket_create(
    *,
    email: str,
    message: str,
    topic: str = Ticket.Topic.OTHER,
    name: str = "",
    phone: str = "",
    station_id: str = "",
    property_name: str = "",
    occurred_at: datetime | None = None,
    prompt: str = "",
    source: str = Ticket.Source.CONTACT_FORM,
    client_ip: str | None = None,
) -> Ticket:
    """Create a ticket, link it to the charger the Station ID names (exact match), confirm by email."""
    station_id = station_id.strip()
    charger, prop = charger_context(station_id)
    ticket = Ticket.objects.create(
        email=email,
        message=message,
        topic=topic,
        name=name,
        phone=phone,
        station_id=station_id,
        charger=charger,
        property=prop,
        property_name=property_name or (prop.name if prop else ""),
        occurred_at=occurred_at,
        prompt=prompt[:120],
        source=source,
        client_ip=client_ip,
    )
    transaction.on_commit(lambda: ticket_confirm_email(ticket_id=ticket.pk))
    return ticket


def ticket_confirm_email(*, ticket_id: int) -> None:
    """Send the customer a confirmation with the ticket reference (best effort)."""
    ticket = Ticket.objects.get(pk=ticket_id)
    if not ticket.email:
        return
    body = render_to_string("support/email_ticket_received.txt", {"ticket": ticket})
    try:
        send_mail(f"We received your request #{ticket.reference}", body, None, [ticket.email])
    except Exception:  # the ticket is stored either way; agents see it in the admin
        logger.warning(
            "Could not email the confirmation of ticket %s", ticket.reference, exc_info=True
        )


def tickets_set_status(*, ticket_ids: list[int], status: str) -> int:
    """Set the status of several tickets (an agent action in the admin)."""
    return Ticket.objects.filter(pk__in=ticket_ids).update(status=status)
