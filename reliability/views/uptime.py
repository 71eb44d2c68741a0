"""Portal pages of the reliability app: a charger's uptime, timeline and exclusions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_http_methods

from backoffice.tenancy import can_write, require_role
from chargers.models import Charger
from chargers.web.selectors import charger_for_user, chargers_for

from .. import kpi_selectors, kpis, window
from ..faults import FaultTable
from ..forms import ExclusionForm
from ..models import Exclusion
from ..services import exclusions, timeline, uptime

CAUSE_WORDS = {
    "faulted": "Faulted",
    "unavailable": "Unavailable (not by you)",
    "offline": "Offline",
    "failed_start": "Failed start (no energy)",
}


MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


class MonthRefused(ValueError):
    """?month= is not a month of the reporting window (the text says why)."""


def _month(asked: str | None) -> tuple[datetime, datetime]:
    """The month asked for (?month=2026-03, inside the reporting window), or this one; cut at
    now. MonthRefused for anything else (9999-12, 0001-01, 1-1)."""
    now = timezone.localtime()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if asked is not None:
        first, last = window.years(now, now.tzinfo or timezone.get_current_timezone())
        match = MONTH.fullmatch(asked)
        year, month = (int(match[1]), int(match[2])) if match else (0, 0)
        if not (first <= year <= last and 1 <= month <= 12):
            raise MonthRefused(f"month: give a month as YYYY-MM from {first}-01 through {last}-12.")
        start = start.replace(year=year, month=month)
    carry, month_index = divmod(start.month, 12)
    following = start.replace(year=start.year + carry, month=month_index + 1)
    return start, min(following, timezone.now())


def _shown(moment: datetime) -> str:
    """An exclusion's moment in the viewer's zone; in UTC when that zone would carry it past
    year 1 or 9999 (a row entered before dates were bounded to the reporting window)."""
    try:
        return date_format(timezone.localtime(moment), "j M Y H:i")
    except OverflowError:
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _left(moment: datetime, start: datetime, end: datetime) -> float:
    """Where `moment` lies on the month's 0-100 % wide timeline. In real seconds: `end - start`
    of two times in one zone is their wall clocks' difference (744 hours in a March or an
    October), which put every mark after the change of the clocks an hour off."""
    total = end.timestamp() - start.timestamp() or 1
    return round((moment.timestamp() - start.timestamp()) / total * 100, 3)


def _bars(port: uptime.PortUptime, start: datetime, end: datetime) -> list[dict]:
    """The port's outages as positions on a 0-100 % wide timeline."""
    total = end.timestamp() - start.timestamp() or 1
    return [
        {
            "left": _left(o.start, start, end),
            "width": max(round(o.seconds / total * 100, 3), 0.3),
            "outage": o,
            "words": CAUSE_WORDS.get(o.cause, o.cause),
        }
        for o in port.uptime.outages
    ]


FLEET_PER_PAGE = 25


def kpi_row(key: str, label: str, tally: kpis.Tally) -> dict:
    """One row of the success KPIs table (templates/reliability/includes/_kpis.html)."""
    figures = tally.as_json()
    return {
        "key": key,
        "label": label,
        "k": figures,
        "modes": [
            {"words": kpis.MODE_WORDS[mode], "attempts": v["charge_attempts"], **v}
            for mode, v in figures["by_mode"].items()
            if v["charge_attempts"]
        ],
    }


def _fleet_kpis(chargers: list, start: datetime, end: datetime, now: datetime) -> list[dict]:
    """The fleet (each organization) and each property, over every charger the user reads."""
    board = kpi_selectors.board(chargers, start, end, now)
    properties = {c.property_id: c.property for c in chargers if c.property_id}
    organizations = {p.organization_id: p.organization for p in properties.values()}
    rows = [
        kpi_row(
            f"fleet-{org}",
            f"Fleet: {organizations[org].name}" if org in organizations else "Fleet",
            tally,
        )
        for org, tally in sorted(board.fleets.items(), key=lambda kv: kv[0] or 0)
    ]
    rows += [
        kpi_row(
            f"property-{prop}",
            properties[prop].name if prop in properties else "No location",
            tally,
        )
        for prop, tally in sorted(board.properties.items(), key=lambda kv: kv[0] or 0)
    ]
    return rows


def _fleet_row(charger: Charger, start: datetime, end: datetime, now: datetime) -> dict:
    """One charger of the fleet page: its ports together, and every port's outages on one
    timeline of the month."""
    ports = [
        uptime.port_uptime(charger, port, start, end, now) for port in timeline.ports_of(charger)
    ]
    total = uptime.aggregate(ports) if ports else None
    bars = [{**bar, "port": p.connector_id} for p in ports for bar in _bars(p, start, end)]
    return {
        "charger": charger,
        "ports": len(ports),
        "percent": total.percent if total is not None else None,
        "below": total is not None and total.percent < uptime.TARGET_PERCENT,
        "outages": sum(len(p.uptime.outages) for p in ports),
        "bars": bars,
    }


@login_required
@require_http_methods(["GET"])
def fleet_uptime(request: HttpRequest) -> HttpResponse:
    """The main navigation's Uptime: every charger the user may read, this month (or ?month=),
    each with its port-weighted uptime and its outages on a time axis."""
    try:
        start, end = _month(request.GET.get("month"))
        refused = ""
    except MonthRefused as exc:
        start, end = _month(None)
        refused = str(exc)
    chargers = chargers_for(request.user).order_by("station_id")
    page = Paginator(chargers, FLEET_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    timeline.links_sync(list(page.object_list), now)
    days = [
        {"left": _left(day, start, end), "day": day}
        for day in (start + timedelta(days=n) for n in (0, 7, 14, 21, 28))
        if day < end
    ]
    context = {
        "kpi_rows": _fleet_kpis(list(chargers), start, end, now),
        "kpi_rules": kpi_selectors.rules().as_json(),
        "kpi_caption": "Success per fleet and location",
        "kpi_label_header": "Fleet or location",
        "rows": [_fleet_row(c, start, end, now) for c in page.object_list],
        "page": page,
        "start": start,
        "end": end,
        "days": days,
        "month": f"{start:%Y-%m}",
        "month_refused": refused,
        "target": uptime.TARGET_PERCENT,
        "portal_section": "uptime",
    }
    return render(request, "reliability/fleet_uptime.html", context)


@login_required
def charger_uptime(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404("No such charger")
    role = require_role(request.user, charger.organization_id)
    editable = can_write(request.user, charger.organization_id)
    try:
        start, end = _month(request.GET.get("month"))
        refused = ""
    except MonthRefused as exc:  # this month is shown, with the reason the asked one is not
        start, end = _month(None)
        refused = str(exc)
    ports = uptime.charger_uptime(charger, start, end)
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
    board = kpi_selectors.board([charger], start, end)
    kpi_ports = sorted({p.connector_id for p in ports} | {c for _, c in board.ports})
    context = {
        "kpi_rows": [
            kpi_row(
                f"port-{c}",
                f"Port {c}" if c else "Port not named (an Authorize names none)",
                board.port(charger.pk, c),
            )
            for c in kpi_ports
        ],
        "kpi_rules": board.rules.as_json(),
        "kpi_caption": "Success per port",
        "kpi_label_header": "Port",
        "charger": charger,
        "tab": "uptime",
        "role": role,
        "editable": editable,
        "start": start,
        "end": end,
        "target": uptime.TARGET_PERCENT,
        "ports": [
            {
                "port": p,
                "bars": _bars(p, start, end),
                "below": p.uptime.percent < uptime.TARGET_PERCENT,
                "rows": [
                    (
                        o,
                        CAUSE_WORDS.get(o.cause, o.cause),
                        table.faults_of(o.error_code, o.vendor_code, charger.vendor),
                    )
                    for o in p.uptime.outages
                ],
            }
            for p in ports
        ],
        "exclusions": [
            (row, _shown(row.start), _shown(row.end))
            for row in Exclusion.objects.filter(charger=charger).select_related("created_by")[:50]
        ],
        "form": form,
        "month_refused": refused,
    }
    return render(
        request,
        "reliability/charger_uptime.html",
        context,
        status=400 if request.method == "POST" or refused else 200,
    )


@require_http_methods(["GET", "POST"])
def alert_recipient_confirm(request: HttpRequest, key: str) -> HttpResponse:
    """The link emailed to an alert address (issue 47 item 6): the page asks, the button
    confirms (a GET changes nothing, so a mail scanner opening links confirms no one)."""
    from ..models import AlertRecipient
    from ..services.recipients import recipient_confirm

    recipient = AlertRecipient.objects.filter(key=key).select_related("organization").first()
    if recipient is None:
        raise Http404
    if request.method == "POST":
        recipient = recipient_confirm(key) or recipient
    return render(
        request,
        "reliability/alert_recipient_confirm.html",
        {"recipient": recipient, "confirmed": recipient.confirmed_at is not None},
    )
