"""Driver pages for partner networks: find a partner CPO's charger, see our price, start, follow
and stop the session, and the bill of each CDR. Thin adapters over drivers.roaming and
roaming.emsp_driving (the driver's own rows only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from roaming import cdr_check
from roaming.emsp_driving import (
    CommandRefused,
    commands_of,
    driver_identity,
    location_offer,
    network_location,
    network_locations,
    open_session,
    sessions_of,
    start_in_progress,
    stopping,
)
from roaming.models import PartnerCdr, PartnerCommand, PartnerLocation, PartnerSession

from . import roaming as driver_roaming
from .selectors import default_card
from .views import driver_required, request_profile

# What became of a start or stop, in the driver's words: (CommandResponse or CommandResult).
_RESPONSE_WORDS = {
    "UNREACHABLE": "The network did not answer. Try again in a minute.",
    "REJECTED": "The network refused it. Try another charger or use your card.",
    "NOT_SUPPORTED": "This charger cannot be started or stopped from an app: use your card.",
    "UNKNOWN_SESSION": "The network does not know this session any more: it may have ended.",
}
_RESULT_WORDS = {
    "EVSE_OCCUPIED": "The charger is in use by someone else.",
    "EVSE_INOPERATIVE": "The charger is out of service.",
    "FAILED": "The charger could not do it. Try again, or use your card.",
    "REJECTED": "The charger refused. Try again, or use your card.",
    "NOT_SUPPORTED": "This charger cannot be started or stopped from an app: use your card.",
    "TIMEOUT": "The charger did not answer in time. Try again.",
}


def command_words(command: PartnerCommand) -> str:
    """What the driver is told about their last start or stop."""
    starting = command.type == PartnerCommand.Type.START_SESSION
    if command.response != "ACCEPTED":
        return _RESPONSE_WORDS.get(command.response, "Sending to the network…")
    if command.result == "ACCEPTED":
        return (
            "The charger accepted: plug in if you have not. Your session appears here when it "
            "begins."
            if starting
            else "The charger is stopping your session."
        )
    if command.result:
        return _RESULT_WORDS.get(command.result, "The charger could not do it.")
    return "Waiting for the charger to answer…" if starting else "Waiting for the charger to stop…"


@dataclass(frozen=True)
class SessionLine:
    session: PartnerSession
    place: str  # the location's name (or address, or its id when we do not hold it)
    time_zone: str  # the location's: times are shown as the charger's clock says them
    started: datetime | None
    kwh: Any
    price_so_far: Decimal | None  # our price to the driver for the cost so far (tax included)
    cdr: PartnerCdr | None


def _driver_price(cost: Any) -> Decimal | None:
    try:
        before_tax = cdr_check.price_before_tax(cost)
    except cdr_check.NotRecomputable:
        return None
    return cdr_check.driver_price(
        before_tax,
        margin_percent=Decimal(settings.OCPI_EMSP_MARGIN_PERCENT),
        fee=Decimal(settings.OCPI_EMSP_ROAMING_FEE_CENTS) / 100,
        vat_percent=Decimal(settings.OCPI_EMSP_VAT_PERCENT),
    ).total


def _places(sessions: list[PartnerSession]) -> dict[tuple[int, str], dict]:
    """The locations of the sessions, as we hold them: {(partner id, location id): data}."""
    wanted = {(s.partner_id, str(s.data.get("location_id", ""))) for s in sessions}
    rows = PartnerLocation.objects.filter(
        partner_id__in={p for p, _ in wanted}, location_id__in={loc for _, loc in wanted}
    ).values_list("partner_id", "location_id", "data")
    return {(p, loc): data for p, loc, data in rows}


def _lines(sessions: list[PartnerSession], cdrs: list[PartnerCdr]) -> list[SessionLine]:
    # A session's bill is its newest CDR that is not a credit (a corrected CDR follows a credit).
    by_session = {
        str(c.data.get("session_id")): c
        for c in reversed(cdrs)
        if c.data.get("session_id") and c.status != PartnerCdr.Status.CREDIT
    }
    places = _places(sessions)

    def place(s: PartnerSession) -> dict:
        return places.get((s.partner_id, str(s.data.get("location_id", "")))) or {}

    return [
        SessionLine(
            session=s,
            place=str(
                place(s).get("name") or place(s).get("address") or s.data.get("location_id", "")
            ),
            time_zone=str(place(s).get("time_zone") or "UTC"),
            started=driver_roaming.ocpi_moment(s.data.get("start_date_time")),
            kwh=s.data.get("kwh"),
            price_so_far=_driver_price(s.data.get("total_cost")),
            cdr=by_session.get(s.session_id),
        )
        for s in sessions
    ]


def _activity(profile: Any) -> dict[str, Any]:
    token = profile.roaming_token
    if token is None:
        return {"now": None, "last_command_words": "", "waiting": False, "past": []}
    sessions = list(sessions_of(token).order_by("-last_updated")[:20])
    cdrs = list(PartnerCdr.objects.filter(token=token).order_by("-received_at")[:40])
    now = open_session(token)
    lines = _lines(sessions, cdrs)
    return {
        "now": now,
        "now_line": next((line for line in lines if now and line.session.pk == now.pk), None),
        "stopping": now is not None and stopping(token, now),
        "last_command_words": _news(token, now, sessions),
        "waiting": now is None and start_in_progress(token) is not None,
        "past": [line for line in lines if not now or line.session.pk != now.pk],
    }


def _news(token: Any, now: PartnerSession | None, sessions: list[PartnerSession]) -> str:
    """What to say about the driver's last start or stop, only while it still matters: a stop
    of the session running now; a start no session has followed yet (within the hour)."""
    command = commands_of(token).first()
    if command is None:
        return ""
    if now is not None:
        stopping = command.type == PartnerCommand.Type.STOP_SESSION
        return command_words(command) if stopping and command.session_id == now.session_id else ""
    recent = (timezone.now() - command.created_at).total_seconds() < 3600
    followed = any(s.received_at >= command.created_at for s in sessions)
    starting = command.type == PartnerCommand.Type.START_SESSION
    return command_words(command) if starting and recent and not followed else ""


@require_GET
@driver_required
def networks(request: HttpRequest) -> HttpResponse:
    """Partner networks' locations, searched by place."""
    identity = driver_identity()
    query = request.GET.get("q", "")[:100]
    locations = list(network_locations(identity, query=query)[:50]) if identity else []
    return render(
        request,
        "drivers/networks.html",
        {"offered": identity is not None, "locations": locations, "query": query},
    )


@require_GET
@driver_required
def network_location_page(request: HttpRequest, pk: int) -> HttpResponse:
    identity = driver_identity()
    location = network_location(identity, pk) if identity else None
    if location is None:
        raise Http404("No such location")
    profile = request_profile(request)
    return render(
        request,
        "drivers/network_location.html",
        {
            "location": location,
            "offers": location_offer(location),
            "billing_currency": identity.currency if identity else "",
            "card": default_card(profile),
            "busy": profile.roaming_token is not None and open_session(profile.roaming_token),
        },
    )


def _site_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@require_POST
@driver_required
def network_start(request: HttpRequest, pk: int) -> HttpResponse:
    evse = request.POST.get("evse", "")[:36]
    connector = request.POST.get("connector", "")[:36]
    try:
        command = driver_roaming.roaming_start(
            profile=request_profile(request),
            location_pk=pk,
            evse_uid=evse,
            connector_id=connector,
            site_url=_site_url(request),
        )
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        identity = driver_identity()
        if identity is None or network_location(identity, pk) is None:
            return redirect("drivers:networks")  # nothing there to go back to
        return redirect("drivers:network-location", pk=pk)
    except CommandRefused as refused:
        messages.error(request, refused.message)
        return redirect("drivers:network-location", pk=pk)
    if command.response != "ACCEPTED":
        messages.error(request, command_words(command))
        return redirect("drivers:network-location", pk=pk)
    return redirect("drivers:network-activity")


@require_POST
@driver_required
def network_stop(request: HttpRequest, session_pk: int) -> HttpResponse:
    try:
        command = driver_roaming.roaming_stop(
            profile=request_profile(request), session_pk=session_pk, site_url=_site_url(request)
        )
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    except CommandRefused as refused:
        messages.error(request, refused.message)
    else:
        if command.response != "ACCEPTED":
            messages.error(request, command_words(command))
    return redirect("drivers:network-activity")


@require_GET
@driver_required
def network_activity(request: HttpRequest) -> HttpResponse:
    """The driver's start in progress, the session running and the past ones with their bill."""
    return render(request, "drivers/network_activity.html", _activity(request_profile(request)))
