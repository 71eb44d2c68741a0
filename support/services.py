"""Writes for support tickets."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.mail import send_mail
from django.db import connection, transaction
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
    """Create a ticket, link it to the charger the Station ID names (exact match), confirm by email.

    The same request sent twice (a double click on Send, a resubmitted page) is the ticket it
    made: an unresolved ticket with this email, message and Station ID is returned, and no
    second confirmation goes out. Requests from one address take turns (an advisory lock on
    PostgreSQL) so two sent at once find each other."""
    station_id = station_id.strip()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                [f"support.ticket_create:{email.strip().casefold()}"],
            )
    sent = (
        Ticket.objects.filter(email__iexact=email.strip(), message=message, station_id=station_id)
        .exclude(status=Ticket.Status.RESOLVED)
        .order_by("-created_at", "-id")
        .first()
    )
    if sent is not None:
        return sent
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


NO_ENERGY_READING = "no_energy_reading"
FLAGGED_SESSIONS_MAX = 50


@transaction.atomic
def flag_session_without_energy_reading(*, session_id: int) -> Ticket | None:
    """Flag for support a session that finished without any energy reading (its energy is
    unknown and it was priced by time only): one open ticket per charger, which lists the
    sessions, so a charger that never reports energy raises one ticket, not one per session."""
    from chargers.models import Charger, ChargingSession

    session = (
        ChargingSession.objects.select_related("charger", "charger__property")
        .filter(pk=session_id)
        .first()
    )
    if session is None or not session.no_reading:
        return None
    charger = session.charger
    # One flag of a charger at a time: two of its sessions finishing together (two connectors, a
    # batch of stops) each found no open ticket and opened one.
    list(Charger.objects.select_for_update(of=("self",)).filter(pk=charger.pk).values_list("pk"))
    ticket = (
        Ticket.objects.select_for_update()
        .filter(charger=charger, details__flag=NO_ENERGY_READING)
        .exclude(status=Ticket.Status.RESOLVED)
        .first()
    )
    if ticket is not None:
        sessions = list(ticket.details.get("sessions") or [])
        if session_id not in sessions:
            ticket.details["sessions"] = [*sessions, session_id][-FLAGGED_SESSIONS_MAX:]
            ticket.save(update_fields=["details", "updated_at"])
        return ticket
    prop = charger.property
    return Ticket.objects.create(
        topic=Ticket.Topic.OTHER,
        source=Ticket.Source.ASSISTANT,
        message=(
            f"Charger {charger.station_id} finished session {session.transaction_id} without "
            "reporting any energy reading, so its energy is unknown and it was priced by time "
            "only. Check that the charger sends Energy.Active.Import.Register in its transaction "
            "meter values (it is configured to when the organization's setting allows it)."
        ),
        station_id=charger.station_id,
        charger=charger,
        property=prop,
        property_name=prop.name if prop else "",
        organization=prop.organization if prop else None,
        session=session,
        occurred_at=session.stopped_at,
        details={"flag": NO_ENERGY_READING, "sessions": [session_id]},
    )


SETTLEMENT_HELD = "signed_meter_values"


@transaction.atomic
def flag_settlement_held(*, session_id: int, reason: str) -> Ticket | None:
    """Open a ticket for a session whose settlement is held because its signed meter readings
    do not verify (billing follows the signature, docs/metering.md): one per session, since
    each is money waiting for an agent's decision. The session's row is locked: two pricing
    runs that both announced the hold (a sweep and the session's end) open one ticket."""
    from chargers.models import ChargingSession

    session = (
        ChargingSession.objects.select_for_update(of=("self",))
        .select_related("charger", "charger__property")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        return None
    existing = Ticket.objects.filter(session=session, details__flag=SETTLEMENT_HELD).first()
    if existing is not None:
        return existing
    charger = session.charger
    prop = charger.property
    return Ticket.objects.create(
        topic=Ticket.Topic.BILLING,
        source=Ticket.Source.ASSISTANT,
        message=(
            f"The settlement of session {session.transaction_id} on charger "
            f"{charger.station_id} is held: {reason}. Check the meter's public key registered "
            "for the charger (meter keys) against the one printed on the meter, then register "
            "the right key (the session is verified and settled again) or set the "
            "organization's policy to bill the measured energy."
        ),
        station_id=charger.station_id,
        charger=charger,
        property=prop,
        property_name=prop.name if prop else "",
        organization=prop.organization if prop else None,
        session=session,
        occurred_at=session.stopped_at,
        details={"flag": SETTLEMENT_HELD, "reason": reason[:200]},
    )


def open_license_request(charger_id: int) -> Ticket | None:
    """The charger's license request support has not answered yet, if any."""
    return (
        Ticket.objects.filter(charger_id=charger_id, topic=Ticket.Topic.LICENSE)
        .exclude(status=Ticket.Status.RESOLVED)
        .order_by("-created_at")
        .first()
    )


@transaction.atomic
def license_request(*, charger_id: int, user: Any) -> tuple[Ticket, bool]:
    """A host asks support to activate a charger's license (one click in the portal): one ticket
    per charger until support answers it. Returns (ticket, created)."""
    from chargers.models import Charger

    # Lock the charger: two clicks at once make one ticket.
    charger = (
        Charger.objects.select_for_update(of=("self",))
        .select_related("property")
        .get(pk=charger_id)
    )
    existing = open_license_request(charger.pk)
    if existing is not None:
        return existing, False
    site = charger.property
    assert site is not None, "the portal offers the request for a placed charger only"
    until = charger.license_valid_until
    state = f"it ended on {until:%d %b %Y}" if until else "it has no license yet"
    ticket = Ticket.objects.create(
        topic=Ticket.Topic.LICENSE,
        source=Ticket.Source.PORTAL,
        email=getattr(user, "email", "") or "",
        name=(user.get_full_name() or user.get_username()) if user else "",
        station_id=charger.station_id,
        charger=charger,
        property=site,
        property_name=site.name,
        organization_id=site.organization_id,
        requested_by=user,
        message=(
            f"Please activate the license of charger {charger.station_id} at {site.name}: {state}."
        ),
    )
    transaction.on_commit(lambda: ticket_confirm_email(ticket_id=ticket.pk))
    return ticket, True
