"""Support's part of the dashboard (the assistant's findings; provided in SupportConfig.ready),
and its receiver of sessions without an energy reading."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from billing.signals import settlement_held
from chargers.signals import session_without_energy_reading

from .findings import host_findings, tickets_for
from .models import Ticket


def dashboard_support_figures(*, user: Any, now: Any, **kwargs: Any) -> dict[str, Any]:
    """Return the assistant's findings for the user's chargers and their open support tickets."""
    return {
        "assistant_findings": host_findings(user, now=now),
        "open_tickets": tickets_for(user).exclude(status=Ticket.Status.RESOLVED).count(),
    }


@receiver(session_without_energy_reading, dispatch_uid="support.flag_no_energy_reading")
def flag_no_energy_reading(sender: Any, session_id: int, **kwargs: Any) -> None:
    """A session finished without any energy reading: flagged for support (a ticket)."""
    from .services import flag_session_without_energy_reading

    flag_session_without_energy_reading(session_id=session_id)


@receiver(settlement_held, dispatch_uid="support.flag_settlement_held")
def flag_settlement_held(sender: Any, session_id: int, reason: str = "", **kwargs: Any) -> None:
    """A settlement is held (signed meter readings that do not verify): a ticket for support."""
    from .services import flag_settlement_held as flag

    flag(session_id=session_id, reason=reason)
