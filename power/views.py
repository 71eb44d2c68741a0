"""Portal pages of site power: a location's budget, policy, schedule and live allocation."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from backoffice.forms import STALE_EDIT
from backoffice.models import Property
from backoffice.tenancy import readable, require_role

from . import charts, selectors, services
from .forms import (
    PowerForm,
    ReadingForm,
    circuit_rows,
    circuits_text,
    connectors_text,
    posted_rows,
    schedule_rows,
    schedule_text,
)

CLASS_WORDS = {
    "stay_guest": "Stay guest",
    "paying_guest": "Paying guest",
    "employee": "Employee card",
    "fleet": "Fleet card",
    "other": "Other",
}
SOURCE_WORDS = {
    "live": "live reading from the building meter",
    "schedule": "time-of-day limit",
    "static": "the budget",
}


def _property(request: HttpRequest, pk: int) -> Property:
    return get_object_or_404(
        readable(Property.objects.select_related("organization"), request.user), pk=pk
    )


def _station_ids(prop: Property) -> dict[str, int]:
    return dict(selectors.chargers_of(prop.pk).values_list("station_id", "pk"))


def _zone(prop: Property) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(prop.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def live_context(prop: Property) -> dict[str, Any]:
    """What the live card shows: the budget in force, each connector's allocation, the chart."""
    site = selectors.budget_get(prop.pk)
    now = timezone.now()
    in_force = services.budget_in_force(site, now) if site else None
    zone = _zone(prop)
    rows = list(selectors.allocations_of(prop.pk))
    units = selectors.in_both_units(rows, site)
    samples = selectors.samples_of(prop.pk, now=now)
    chart = charts.power_chart(
        [(s.at.astimezone(zone), s.budget_a, s.allocated_a, s.measured_a) for s in samples]
    )
    return {
        "property": prop,
        "site": site,
        "in_force": in_force,
        "source_words": SOURCE_WORDS.get(in_force.source, "") if in_force else "",
        "in_force_kw": in_force.budget.limit_kw.quantize(Decimal("0.1")) if in_force else None,
        "allocations": [
            {
                "row": a,
                "kind": CLASS_WORDS.get(a.priority_class, a.priority_class),
                **units.get(a.pk, {}),
            }
            for a in rows
        ],
        "total_limit": sum((a.limit_a for a in rows), start=0),
        "waiting": sum(1 for a in rows if a.waiting),
        "chart": chart,
        "zone": prop.timezone,
    }


@login_required
def power_overview(request: HttpRequest) -> HttpResponse:
    """The main navigation's Power: every location the user may read, with its budget."""
    properties = (
        readable(Property.objects.select_related("organization", "power_budget"), request.user)
        .annotate(charger_count=Count("chargers", distinct=True))
        .order_by("name", "pk")
    )
    return render(
        request,
        "power/power_overview.html",
        {"properties": properties, "portal_section": "power"},
    )


def _initial(site: Any, prop: Property) -> dict[str, Any]:
    return {
        "version": services.budget_version(site),
        "limit_a": site.limit_a,
        "phases": site.phases,
        "voltage": site.voltage,
        "policy": site.policy,
        "schedule": schedule_text(site.schedule),
        "circuits": circuits_text(list(selectors.circuits_of(prop.pk))),
        "connectors": connectors_text(list(selectors.connectors_of(prop.pk))),
    }


def _rows(request: HttpRequest | None, prop: Property, site: Any) -> dict[str, Any]:
    """The schedule's and the circuits' rows on the form: as posted when the form comes back
    with an error, else as stored, each with blank rows to add to."""
    if request is not None and request.method == "POST" and request.POST.get("rows") == "1":
        return {
            "schedule_rows": posted_rows(request.POST, "sched"),
            "circuit_rows": posted_rows(request.POST, "circ"),
        }
    return {
        "schedule_rows": schedule_rows(site.schedule if site else []),
        "circuit_rows": circuit_rows(list(selectors.circuits_of(prop.pk))),
    }


@login_required
def location_power(request: HttpRequest, pk: int) -> HttpResponse:
    prop = _property(request, pk)
    editable = require_role(request.user, prop.organization_id).can_write
    site = selectors.budget_get(prop.pk)
    if request.method == "POST":
        require_role(request.user, prop.organization_id, edit=True)
        form = PowerForm(request.POST, station_ids=_station_ids(prop))
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.budget_save(
                    property_id=prop.pk,
                    limit_a=data["limit_a"],
                    phases=data["phases"],
                    voltage=data["voltage"],
                    policy=data["policy"],
                    schedule_entries=data["schedule"],
                    circuits=data["circuits"],
                    connectors=data["connectors"],
                    connectors_replace=True,
                    version=data["version"] if "version" in request.POST else None,
                )
            except services.BudgetChanged as exc:
                # As backoffice.forms.StaleEditMixin: nothing saved, said when; the page now
                # carries the budget's current version, so saving again replaces it.
                data = QueryDict(mutable=True)
                data.update(form.data)
                data["version"] = exc.version
                form.data = data
                shown = timezone.localtime(exc.saved_at).strftime("%H:%M on %d %b %Y")
                form.add_error(None, STALE_EDIT.format(time=shown))
            else:
                messages.success(
                    request, "Power budget saved. The chargers get their new limits now."
                )
                return redirect("power:location-power", prop.pk)
    elif site is not None:
        form = PowerForm(initial=_initial(site, prop))
    else:
        form = PowerForm(initial={"version": ""})
    context = live_context(prop) | {
        "form": form,
        **_rows(request, prop, site),
        "reading_form": ReadingForm(site=site) if site is not None and editable else None,
        "editable": editable,
        "circuits": list(selectors.circuits_of(prop.pk)),
        "connectors": list(selectors.connectors_of(prop.pk)),
        "portal_section": "power",
    }
    return render(request, "power/location_power.html", context)


@login_required
@require_POST
def location_power_reading(request: HttpRequest, pk: int) -> HttpResponse:
    """The Power page's Building meter form: a live budget for a while (as the API's reading)."""
    prop = _property(request, pk)
    require_role(request.user, prop.organization_id, edit=True)
    site = selectors.budget_get(prop.pk)
    if site is None:
        messages.error(request, "Set the power budget first: a reading replaces it for a while.")
        return redirect("power:location-power", prop.pk)
    form = ReadingForm(request.POST, site=site)
    if not form.is_valid():
        context = live_context(prop) | {
            "form": PowerForm(initial=_initial(site, prop)),
            **_rows(None, prop, site),
            "reading_form": form,
            "editable": True,
            "circuits": list(selectors.circuits_of(prop.pk)),
            "connectors": list(selectors.connectors_of(prop.pk)),
            "portal_section": "power",
        }
        return render(request, "power/location_power.html", context, status=400)
    minutes = form.cleaned_data["minutes"]
    services.live_reading_record(
        property_id=prop.pk,
        limit_a=form.cleaned_data["limit_a"],
        valid_for=timedelta(minutes=minutes),
    )
    messages.success(
        request,
        f"Reading saved: {form.cleaned_data['limit_a']:.1f} A per phase for {minutes} min. "
        "The chargers get their new limits now.",
    )
    return redirect("power:location-power", prop.pk)


@login_required
def location_power_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live card alone, refreshed by static/power/power.js."""
    prop = _property(request, pk)
    require_role(request.user, prop.organization_id)
    return render(request, "power/includes/_live.html", live_context(prop))
