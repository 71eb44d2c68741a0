"""Guest pages for a reservation's access code: the stay link and the code-start at a charger."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from chargers.models import Charger
from stays.models import Reservation, normalize_access_code
from stays.selectors import policy_for, reservation_access

from ..ratelimit import rate_limited
from ..selectors import charger_for_station_id
from ..stays import StayRefused, stay_start

# How each refusal answers: the reservation checks are the host's rules (403), an unknown code 404.
_STATUS = {"unknown_code": 404, "port_busy": 409}


@require_POST
@rate_limited("start")
def stay_code_start(request: HttpRequest, station_id: str) -> HttpResponse:
    """POST /s/<station_id>/stay/: start with the reservation's code (charging included)."""
    charger = charger_for_station_id(station_id)
    if charger is None:
        raise Http404("No such charger")
    code = request.POST.get("code", "")[:40]
    connector = request.POST.get("connector", "")
    try:
        gs = stay_start(
            charger=charger,
            code=code,
            connector_id=int(connector) if connector.isdecimal() else None,
            site_url=request.build_absolute_uri("/").rstrip("/"),
        )
    except StayRefused as refused:
        if refused.billed:
            return redirect("guest:landing", station_id=charger.station_id)
        return render(
            request,
            "guest/stay_refused.html",
            {
                "charger": charger,
                "property": charger.property,
                "reason": refused.reason,
                "message": refused.message,
                "code": normalize_access_code(code),
            },
            status=_STATUS.get(refused.reason, 403),
        )
    return redirect("guest:session", key=gs.key)


@require_GET
@rate_limited("lookup")
def stay_link(request: HttpRequest, code: str) -> HttpResponse:
    """GET /s/stay/<code>/: the link in the guest's booking message: their stay and chargers."""
    reservation = (
        Reservation.objects.select_related("property", "unit")
        .filter(access_code=normalize_access_code(code))
        .first()
    )
    if reservation is None:
        raise Http404("No such access code")
    access = reservation_access(reservation)
    chargers = Charger.objects.filter(property_id=reservation.property_id)
    if reservation.unit_id:
        place = Q(unit_id=reservation.unit_id)
        chargers = (
            chargers.filter(place | Q(unit__isnull=True))
            if access.shared_chargers
            else chargers.filter(place)
        )
    elif access.shared_chargers:
        chargers = chargers.filter(unit__isnull=True)
    else:
        chargers = chargers.none()
    return render(
        request,
        "guest/stay_link.html",
        {
            "reservation": reservation,
            "access": access,
            "chargers": chargers.order_by("station_id"),
            "included": access.charging_included,
            "policy": policy_for(reservation.property_id),
            "code": reservation.access_code,
        },
    )
