"""The portal's Network list: every charger of the user's organizations by property and unit, and moves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from backoffice.models import Property
from backoffice.tenancy import readable, require_role, writable, writable_organization_ids
from chargers.devices.placement import charger_place
from chargers.web.filters import charger_state
from chargers.web.selectors import charger_for_user, chargers_for
from stays.forms import UnitForm
from stays.models import ChargerPlacement, Unit
from stays.services import unit_create


def _places(user: Any) -> list[dict[str, Any]]:
    """Return the (property, unit) targets the user may move chargers to, as select options."""
    props = writable(
        Property.objects.select_related("organization").prefetch_related("units"), user
    )
    options = []
    for prop in props.order_by("organization__name", "name"):
        options.append(
            {
                "value": f"{prop.pk}:",
                "label": f"{prop.name} – shared (no unit)",
                "org": prop.organization_id,
            }
        )
        for unit in prop.units.all():
            options.append(
                {
                    "value": f"{prop.pk}:{unit.pk}",
                    "label": f"{prop.name} – {unit.name}",
                    "org": prop.organization_id,
                }
            )
    return options


_MARKER = "STATIONIDMARKER"


def station_url(name: str) -> Callable[[str], str]:
    """`reverse(name, args=[station_id])` for many chargers: reversed once, then filled in the
    way Django's `reverse` quotes a path (its 2,000 calls were a quarter of a 1,000-charger
    page). An id `reverse` itself would refuse (empty, or with a "/") goes through it."""
    pattern = reverse(name, args=[_MARKER])

    def fill(station_id: str) -> str:
        if not station_id or "/" in station_id:
            return reverse(name, args=[station_id])
        return pattern.replace(_MARKER, quote(station_id, safe="!$&'()*+,;=/~:@"))

    return fill


@login_required
def network_list(request: HttpRequest) -> HttpResponse:
    """GET /network/: chargers grouped by property, then unit (shared chargers first), with state."""
    # chargers_for already joins the property and prefetches the connectors (a second prefetch of
    # them cost a query clone per charger: 0.3 s at 1,000 chargers).
    chargers = chargers_for(request.user).select_related("unit").order_by("station_id")
    detail_url, move_url = (
        station_url("chargers:charger-detail"),
        station_url("chargers:network-move"),
    )
    for listed in chargers:
        charger: Any = listed  # the template's links, set on the row's charger
        charger.detail_url = detail_url(charger.station_id)
        charger.move_url = move_url(charger.station_id)
    by_place: dict[int, dict[int | None, list[tuple[Any, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    unplaced = []
    for charger in chargers:
        if charger.property_id is None:
            unplaced.append((charger, charger_state(charger)))
        else:
            by_place[charger.property_id][charger.unit_id].append((charger, charger_state(charger)))
    groups = []
    for prop in (
        readable(Property.objects.select_related("organization"), request.user)
        .prefetch_related("units")
        .order_by("organization__name", "name")
    ):
        rows: list[tuple[Any, list[tuple[Any, str]]]] = [(None, by_place[prop.pk].get(None, []))]
        rows += [(unit, by_place[prop.pk].get(unit.pk, [])) for unit in prop.units.all()]
        units = [{"unit": unit, "chargers": listed} for unit, listed in rows]
        total = sum(len(listed) for _, listed in rows)
        online = sum(1 for _, listed in rows for _, state in listed if state == "online")
        groups.append({"property": prop, "units": units, "total": total, "online": online})
    places = _places(request.user)
    moves = ChargerPlacement.objects.filter(charger_id__in=[c.pk for c in chargers]).select_related(
        "from_property", "from_unit", "to_property", "to_unit", "changed_by"
    )[:20]
    writable_ids = writable_organization_ids(request.user)
    for group in groups:
        prop = group["property"]
        group["can_move"] = writable_ids is None or prop.organization_id in writable_ids
        group["places"] = [p for p in places if p["org"] == prop.organization_id]
        group["unit_form"] = UnitForm(auto_id=f"unit{prop.pk}_%s")
        if group["can_move"]:
            # The same options for every charger of the group, built once: a template loop over
            # every place for each of 1,000 chargers was most of the page's time.
            options = format_html_join(
                "",
                '<option value="{}">{}</option>',
                ((p["value"], p["label"]) for p in group["places"]),
            )
            for unit in group["units"]:
                for charger, _state in unit["chargers"]:
                    place = f"{charger.property_id}:{charger.unit_id or ''}"
                    current = format_html('<option value="{}">', place)
                    charger.place_options = mark_safe(  # noqa: S308 - both parts escaped above
                        options.replace(current, current[:-1] + " selected>", 1)
                    )
    return render(
        request,
        "chargers/network_list.html",
        {
            "groups": groups,
            "unplaced": unplaced,
            "moves": moves,
            "portal_section": "network",
        },
    )


@login_required
@require_POST
def network_move(request: HttpRequest, station_id: str) -> HttpResponse:
    """POST /network/<station_id>/move/ place=<property id>:<unit id or empty>: one logged move."""
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404("No such charger")
    require_role(
        request.user, charger.property.organization_id if charger.property else None, edit=True
    )
    prop_id, _, unit_id = request.POST.get("place", "").partition(":")
    props = writable(Property.objects.all(), request.user)
    prop = props.filter(pk=int(prop_id)).first() if prop_id.isdecimal() else None
    unit = (
        Unit.objects.filter(pk=int(unit_id), property=prop).first()
        if (prop and unit_id.isdecimal())
        else None
    )
    if prop is None or (unit_id and unit is None):
        messages.error(
            request, "Choose one of your properties (and one of its units) from the list."
        )
        return redirect("chargers:network-list")
    try:
        charger_place(charger=charger, property=prop, unit=unit, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("chargers:network-list")
    where = f"{prop.name} – {unit.name}" if unit else f"{prop.name} (shared)"
    messages.success(request, f"{charger.station_id} now belongs to {where}.")
    return redirect("chargers:network-list")


@login_required
@require_POST
def network_unit_add(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /network/properties/<pk>/units/ name, kind: a new unit, offered at once under "Move to"."""
    prop = (
        readable(Property.objects.select_related("organization"), request.user)
        .filter(pk=pk)
        .first()
    )
    if prop is None:
        raise Http404("No such property")
    require_role(request.user, prop.organization_id, edit=True)
    form = UnitForm(request.POST)
    if not form.is_valid():
        text = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"{prop.name}: {text}")
        return redirect(f"{reverse('chargers:network-list')}#prop-{prop.pk}")
    try:
        unit = unit_create(
            property=prop, name=form.cleaned_data["name"], kind=form.cleaned_data["kind"]
        )
    except ValidationError:
        messages.error(request, f"{prop.name} already has a unit of that name.")
        return redirect(f"{reverse('chargers:network-list')}#prop-{prop.pk}")
    messages.success(
        request, f"{prop.name} – {unit.name} added. Move chargers into it with “Move to”."
    )
    return redirect(f"{reverse('chargers:network-list')}#prop-{prop.pk}")
