"""The dashboard asks every app for its figures; support adds the assistant's findings."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from backoffice.views import dashboard_figures

from .findings import host_findings, tickets_for
from .models import Ticket


@receiver(dashboard_figures, dispatch_uid="support.dashboard_findings")
def dashboard_support_figures(sender: Any, user: Any, now: Any, **kwargs: Any) -> dict[str, Any]:
    """Return the assistant's findings for the user's chargers and their open support tickets."""
    return {
        "assistant_findings": host_findings(user, now=now),
        "open_tickets": tickets_for(user).exclude(status=Ticket.Status.RESOLVED).count(),
    }
