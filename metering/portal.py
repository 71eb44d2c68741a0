"""A charger's Meter keys tab (issue 51 item 2): the public keys its signed readings are checked
with. Reads for every member of the charger's organization, writes for owners and managers,
404 for everyone else. Every write goes through metering.services, as the API's do."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from backoffice.tenancy import can_write, require_role
from chargers.models import Charger
from chargers.web.selectors import charger_for_user

from . import services
from .forms import MeterKeyConfirmForm, MeterKeyForm
from .models import MeterKey


def _charger(request: HttpRequest, station_id: str, *, write: bool) -> Charger:
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404("No such charger")
    require_role(request.user, charger.organization_id, edit=write)
    return charger


def _key(charger: Charger, pk: int) -> MeterKey:
    key = MeterKey.objects.filter(charger=charger, pk=pk).first()
    if key is None:
        raise Http404("No such meter key")
    return key


def _page(
    request: HttpRequest,
    charger: Charger,
    form: MeterKeyForm | None = None,
    confirm: tuple[int, MeterKeyConfirmForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    v201 = charger.speaks_v2()
    keys = MeterKey.objects.filter(charger=charger).select_related("registered_by")
    rows = [
        (
            key,
            confirm[1]
            if confirm and confirm[0] == key.pk
            else MeterKeyConfirmForm(
                prefix=f"key{key.pk}", initial={"shown_key": key.public_key_hex}
            ),
        )
        for key in keys.order_by("meter_serial", "connector_id", "evse_id")
    ]
    context = {
        "charger": charger,
        "tab": "meter-keys",
        "keys": rows,
        "port_word": "EVSE" if v201 else "Connector",
        "editable": can_write(request.user, charger.organization_id),
        "form": form or MeterKeyForm(v201=v201),
    }
    return render(request, "metering/charger_meter_keys.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def charger_meter_keys(request: HttpRequest, station_id: str) -> HttpResponse:
    """The list, and the Add a key form (POST)."""
    charger = _charger(request, station_id, write=request.method == "POST")
    if request.method != "POST":
        return _page(request, charger)
    v201 = charger.speaks_v2()
    form = MeterKeyForm(request.POST, v201=v201)
    if form.is_valid():
        data = form.cleaned_data
        port = data["port"]
        try:
            services.meter_key_put(
                charger=charger,
                meter_serial=data["meter_serial"],
                connector_id=None if v201 else port,
                evse_id=port if v201 else None,
                public_key=data["public_key"],
                signing_method=data["signing_method"],
                user=request.user,
            )
        except ValueError as exc:
            form.add_error("public_key", str(exc))
        else:
            services.charger_signed_recheck(charger_id=charger.pk)
            messages.success(request, "Meter key saved. It verifies this meter's signed readings.")
            return redirect("meterkeys:charger-meter-keys", station_id=charger.station_id)
    return _page(request, charger, form=form, status=400)


@login_required
@require_POST
def charger_meter_key_confirm(request: HttpRequest, station_id: str, pk: int) -> HttpResponse:
    charger = _charger(request, station_id, write=True)
    key = _key(charger, pk)
    form = MeterKeyConfirmForm(request.POST, prefix=f"key{key.pk}")
    if form.is_valid():
        try:
            services.meter_key_confirm(
                key=key,
                user=request.user,
                printed_key=form.cleaned_data["printed_key"].strip(),
                shown_key=form.cleaned_data["shown_key"],
            )
        except services.KeyChanged as exc:
            messages.error(request, str(exc))  # the page shows the new key, to compare again
            return redirect("meterkeys:charger-meter-keys", station_id=charger.station_id)
        except ValueError as exc:
            form.add_error("printed_key", str(exc))
        else:
            messages.success(request, "Meter key confirmed. It verifies this meter's readings.")
            return redirect("meterkeys:charger-meter-keys", station_id=charger.station_id)
    return _page(request, charger, confirm=(key.pk, form), status=400)


@login_required
@require_POST
def charger_meter_key_delete(request: HttpRequest, station_id: str, pk: int) -> HttpResponse:
    charger = _charger(request, station_id, write=True)
    services.meter_key_delete(_key(charger, pk))
    messages.success(request, "Meter key deleted.")
    return redirect("meterkeys:charger-meter-keys", station_id=charger.station_id)


@login_required
@require_POST
def charger_meter_keys_read(request: HttpRequest, station_id: str) -> HttpResponse:
    """Ask the charger for its meters' keys; they are kept unconfirmed until a person confirms."""
    charger = _charger(request, station_id, write=True)
    try:
        keys = services.meter_keys_read_from_charger(charger=charger, user_id=request.user.pk)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        if keys:
            messages.success(
                request,
                f"The charger reported {len(keys)} key{'s' if len(keys) != 1 else ''}. Confirm "
                "each against the key printed on its meter.",
            )
        else:
            messages.info(request, "The charger reported no meter key it can be checked with.")
    return redirect("meterkeys:charger-meter-keys", station_id=charger.station_id)
