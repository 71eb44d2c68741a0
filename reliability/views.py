"""Portal pages of the reliability app: a charger's uptime, timeline and exclusions."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone

from backoffice.tenancy import can_write
from backoffice.views import require_role
from chargers.web.selectors import charger_for_user

from . import exclusions, services
from .faults import FaultTable
from .forms import ExclusionForm
from .models import Exclusion

CAUSE_WORDS = {
    "faulted": "Faulted",
    "unavailable": "Unavailable (not by you)",
    "offline": "Offline",
    "failed_start": "Failed start (no energy)",
}


def _month(request) -> tuple[datetime, datetime]:
    """The month asked for (?month=2026-03), or this one; cut at now."""
    now = timezone.localtime()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    try:
        year, month = (int(part) for part in request.GET.get("month", "").split("-"))
        start = start.replace(year=year, month=month)
    except ValueError:
        pass
    carry, month_index = divmod(start.month, 12)
    following = start.replace(year=start.year + carry, month=month_index + 1)
    return start, min(following, timezone.now())


def _bars(port: services.PortUptime, start: datetime, end: datetime) -> list[dict]:
    """The port's outages as positions on a 0-100 % wide timeline."""
    total = (end - start).total_seconds() or 1
    return [
        {
            "left": round((o.start - start).total_seconds() / total * 100, 3),
            "width": max(round(o.seconds / total * 100, 3), 0.3),
            "outage": o,
            "words": CAUSE_WORDS.get(o.cause, o.cause),
        }
        for o in port.uptime.outages
    ]


@login_required
def charger_uptime(request, station_id: str):
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404("No such charger")
    role = require_role(request.user, charger.organization_id)
    editable = can_write(request.user, charger.organization_id)
    start, end = _month(request)
    ports = services.charger_uptime(charger, start, end)
    form = ExclusionForm(ports=[p.connector_id for p in ports])
    if request.method == "POST":
        require_role(request.user, charger.organization_id, edit=True)
        form = ExclusionForm(request.POST, ports=[p.connector_id for p in ports])
        if form.is_valid():
            data = form.cleaned_data
            try:
                exclusions.exclusion_create(
                    charger=charger,
                    connector_id=data["connector_id"],
                    start=data["start"],
                    end=data["end"],
                    reason=data["reason"],
                    note=data["note"],
                    by=request.user,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Exclusion entered.")
                return redirect("reliability:charger-uptime", station_id=charger.station_id)
    table = FaultTable()
    context = {
        "charger": charger,
        "tab": "uptime",
        "role": role,
        "editable": editable,
        "start": start,
        "end": end,
        "target": services.TARGET_PERCENT,
        "ports": [
            {
                "port": p,
                "bars": _bars(p, start, end),
                "below": p.uptime.percent < services.TARGET_PERCENT,
                "rows": [
                    (
                        o,
                        CAUSE_WORDS.get(o.cause, o.cause),
                        table.code(o.error_code, o.vendor_code, charger.vendor),
                    )
                    for o in p.uptime.outages
                ],
            }
            for p in ports
        ],
        "exclusions": Exclusion.objects.filter(charger=charger).select_related("created_by")[:50],
        "form": form,
    }
    return render(
        request,
        "reliability/charger_uptime.html",
        context,
        status=400 if request.method == "POST" else 200,
    )
