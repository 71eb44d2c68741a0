"""Support's part of the dashboard (the assistant's findings; provided in SupportConfig.ready),
and its receiver of sessions without an energy reading."""

from __future__ import annotations

from typing import Any

from .findings import host_findings, tickets_for
from .models import Ticket


def dashboard_support_figures(*, user: Any, now: Any, **kwargs: Any) -> dict[str, Any]:
    """Return the assistant's findings for the user's chargers, their open support tickets and
    the chargers that cannot charge for want of a license (with the way to fix it)."""
    return {
        "assistant_findings": host_findings(user, now=now),
        "open_tickets": tickets_for(user).exclude(status=Ticket.Status.RESOLVED).count(),
        "unlicensed_chargers": unlicensed_chargers(user, today=now.date()),
    }


UNLICENSED_MAX = 8


def unlicensed_chargers(user: Any, *, today: Any) -> list[Any]:
    """The user's chargers without a license in force (the authorization decision refuses every
    start on them: its last day ends at midnight at the charger's location), connected ones
    first, each with its open request to support. `today`: the UTC day; a location's day is at
    most one day after it, so a license valid until then is read and checked there."""
    from django.db.models import F, Q

    from backoffice.tenancy import readable
    from chargers.models import Charger

    candidates = (
        readable(Charger.objects.select_related("property"), user)
        .filter(Q(license_valid_until__isnull=True) | Q(license_valid_until__lte=today))
        .order_by(F("last_seen_at").desc(nulls_last=True), "station_id")
    )
    chargers = [c for c in candidates[: 4 * UNLICENSED_MAX] if not c.license_active()]
    chargers = chargers[:UNLICENSED_MAX]
    requested = dict(
        Ticket.objects.filter(charger__in=chargers, topic=Ticket.Topic.LICENSE)
        .exclude(status=Ticket.Status.RESOLVED)
        .values_list("charger_id", "reference")
    )
    for charger in chargers:
        charger.license_request = requested.get(charger.pk, "")
    return chargers


def flag_no_energy_reading(sender: Any, session_id: int, **kwargs: Any) -> None:
    """A session finished without any energy reading: flagged for support (a ticket)."""
    from .services import flag_session_without_energy_reading

    flag_session_without_energy_reading(session_id=session_id)


def flag_settlement_held(sender: Any, session_id: int, reason: str = "", **kwargs: Any) -> None:
    """A settlement is held (signed meter readings that do not verify): a ticket for support."""
    from .services import flag_settlement_held as flag

    flag(session_id=session_id, reason=reason)


def confirm_ticket_refund(sender: Any, refund_id: int, idempotency_key: str, **kwargs: Any) -> None:
    """A refund was booked: one asked from a ticket is confirmed to the customer and on the
    ticket now, also when the periodic settle booked it after the processor's answer was lost."""
    from .toolkit import ticket_refund_booked

    ticket_refund_booked(refund_id=refund_id, idempotency_key=idempotency_key)
