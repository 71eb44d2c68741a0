"""The support contact form (opened prefilled from the guest page's "Contact support")."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from backoffice import throttle

from ..findings import host_findings, tickets_for
from ..forms import ContactForm
from ..models import Ticket
from ..selectors import charger_context, public_property_name
from ..services import ticket_create

TICKETS_PER_WINDOW = 5
WINDOW_S = 600


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _window() -> int:
    return int(timezone.now().timestamp()) // WINDOW_S


def _over_limit(ip: str) -> bool:
    """Allow a few tickets per client and ten minutes; a form is not a mail relay."""
    # Counted in this process's memory while Redis is down: a guest's ticket is still taken.
    return throttle.hit("support-contact", f"{ip}:{_window()}", WINDOW_S) > TICKETS_PER_WINDOW


def _tz_for(station_id: str):
    _charger, prop = charger_context(station_id)
    try:
        return zoneinfo.ZoneInfo(prop.timezone) if prop else timezone.get_current_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.get_current_timezone()


def _initial(request) -> dict:
    station_id = request.GET.get("station_id", "").strip()[:60]
    initial = {
        "station_id": station_id,
        "property_name": public_property_name(station_id),
        "prompt": request.GET.get("prompt", "")[:120],
        "topic": request.GET.get("topic", "")
        if request.GET.get("topic") in Ticket.Topic.values
        else "",
    }
    at = request.GET.get("at", "")
    try:
        when = datetime.fromisoformat(at) if at else None
    except ValueError:
        when = None
    if when is not None:
        if timezone.is_naive(when):
            when = timezone.make_aware(when, zoneinfo.ZoneInfo("UTC"))
        initial["occurred_at"] = timezone.localtime(when, _tz_for(station_id)).replace(tzinfo=None)
    if not initial["topic"]:
        initial["topic"] = Ticket.Topic.GUEST_START if initial["prompt"] else Ticket.Topic.OTHER
        if initial["prompt"].startswith("Not allowed"):
            initial["topic"] = Ticket.Topic.NOT_ALLOWED
        elif initial["prompt"].startswith("Charger is Out of Order"):
            initial["topic"] = Ticket.Topic.OFFLINE
    return initial


@require_http_methods(["GET", "POST"])
def contact(request):
    if request.method == "GET":
        form = ContactForm(initial=_initial(request))
        return render(request, "support/contact.html", {"form": form})
    station_id = request.POST.get("station_id", "").strip()[:60]
    # A time typed by the guest is local to the charger's property.
    with timezone.override(_tz_for(station_id)):
        form = ContactForm(request.POST)
        valid = form.is_valid()
    if not valid:
        return render(request, "support/contact.html", {"form": form}, status=400)
    if form.cleaned_data["website"]:
        # A bot: answer as if it worked, store nothing.
        return HttpResponseRedirect(reverse("support:contact-sent"))
    if _over_limit(_client_ip(request)):
        return render(
            request, "support/contact.html", {"form": form, "rate_limited": True}, status=429
        )
    data = form.cleaned_data
    ticket = ticket_create(
        email=data["email"],
        message=data["message"],
        topic=data["topic"],
        name=data["name"],
        phone=data["phone"],
        station_id=data["station_id"],
        property_name=data["property_name"],
        occurred_at=data["occurred_at"],
        prompt=data["prompt"],
        source=Ticket.Source.GUEST_PAGE if data["prompt"] else Ticket.Source.CONTACT_FORM,
        client_ip=request.META.get("REMOTE_ADDR") or None,
    )
    return HttpResponseRedirect(reverse("support:contact-sent") + f"?ref={ticket.reference}")


def contact_sent(request):
    reference = "".join(ch for ch in request.GET.get("ref", "") if ch.isalnum())[:8].upper()
    return render(request, "support/contact_sent.html", {"reference": reference})


@login_required
def host_tickets(request):
    """Hosts: their organizations' support tickets and the assistant's findings for their chargers."""
    tickets = tickets_for(request.user).order_by("-created_at")[:100]
    return render(
        request,
        "support/host_tickets.html",
        {
            "tickets": tickets,
            "findings": host_findings(request.user),
            "portal_section": "support",
        },
    )


@login_required
def host_ticket(request, reference: str):
    """Hosts: one ticket, with what the assistant found and the emails support sent."""
    ticket = get_object_or_404(tickets_for(request.user), reference=reference.upper()[:8])
    return render(
        request,
        "support/host_ticket.html",
        {
            "ticket": ticket,
            "facts": (ticket.bundle or {}).get("facts", []),
            "thread": ticket.thread.filter(direction="out").order_by("created_at"),
            "portal_section": "support",
        },
    )
