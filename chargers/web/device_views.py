"""Portal pages of a charger's reservations and OCPP 2.0.1 device model (Chargers > View tabs).

Charger lookups go through the user-scoped selector (another organization's charger is a 404);
every write needs the owner or manager role and goes through one service.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from backoffice.tenancy import require_role
from chargers.devices import commands, remote
from chargers.models import Charger, ChargerEvent, Command, DeviceVariable, VariableMonitor
from chargers.sessions import reservations

MAX_RESERVATION_MINUTES = 24 * 60
# The notices the Smart charging tab lists (the others are customer data, display messages, ...).
SMART_CHARGING_NOTICES = (
    "NotifyChargingLimit",
    "ClearedChargingLimit",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
)


def charger_or_404(user: Any, station_id: str) -> Charger:
    from chargers.web.selectors import charger_for_user

    charger = charger_for_user(user, station_id)
    if charger is None:
        raise Http404("No such charger")
    return charger


def _tab(request: HttpRequest, charger: Charger, tab: str) -> dict[str, Any]:
    from chargers.web.views import tab_context

    return tab_context(request, charger, tab)


def _report(
    request: HttpRequest, label: str, command: Command, good: tuple[str, ...] = ("Accepted",)
) -> None:
    if command.status == Command.Status.ANSWERED:
        result = command.result_status or "done"
        level = messages.SUCCESS if result in good else messages.WARNING
        messages.add_message(request, level, f"{label}: the charger answered {result}.")
    elif command.status == Command.Status.ERROR:
        messages.error(
            request,
            f"{label}: the charger answered with an error: {command.error or command.response}",
        )
    else:
        messages.warning(request, f"{label}: {command.get_status_display()}.")


def _send(
    request: HttpRequest, label: str, send: Any, good: tuple[str, ...] = ("Accepted",)
) -> Command | None:
    """Run `send()` (which sends one command) and tell the user what came of it."""
    try:
        command = send()
    except commands.ChargerOffline:
        messages.error(request, f"{label} was not sent: the charger is offline.")
    except commands.CommandTimeout as exc:
        messages.error(request, exc.told(label))
    except commands.InvalidCommand as exc:
        messages.error(request, f"{label} is not valid for this charger: {exc}")
    except reservations.ReservationRefused as exc:
        messages.error(request, f"{label} was not sent: {exc}")
    else:
        _report(request, label, command, good)
        return command
    return None


# -- Reservations ----------------------------------------------------------------------------------


class ReserveForm(forms.Form):
    connector_id = forms.TypedChoiceField(label="Connector", coerce=int)
    id_tag = forms.CharField(
        label="Card UID", max_length=20, help_text="The card the connector is held for."
    )
    group_id_tag = forms.CharField(
        label="Group (optional)",
        max_length=20,
        required=False,
        help_text="Cards of this group (parent id / groupIdToken) may use it too.",
    )
    minutes = forms.IntegerField(
        label="Hold for (minutes)",
        min_value=1,
        max_value=MAX_RESERVATION_MINUTES,
        initial=30,
    )

    def __init__(self, *args: Any, charger: Charger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        numbers = list(
            charger.connectors.filter(connector_id__gt=0).values_list("connector_id", flat=True)
        )
        field = self.fields["connector_id"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(0, "Any connector")] + [(n, f"Connector {n}") for n in numbers]


@login_required
def charger_reservations(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    context = _tab(request, charger, "reservations")
    context.update(
        {
            "reservations": list(reservations.reservations_for(charger)[:50]),
            "form": ReserveForm(charger=charger),
            "now": timezone.now(),
        }
    )
    return render(request, "chargers/charger_reservations.html", context)


@login_required
@require_POST
def charger_reserve(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    form = ReserveForm(request.POST, charger=charger)
    if not form.is_valid():
        context = _tab(request, charger, "reservations")
        context.update(
            {"reservations": list(reservations.reservations_for(charger)[:50]), "form": form}
        )
        return render(request, "chargers/charger_reservations.html", context, status=400)
    data = form.cleaned_data
    _send(
        request,
        "Reservation",
        lambda: remote.reserve_sync(
            charger,
            connector_id=data["connector_id"],
            id_tag=data["id_tag"].strip(),
            group_id_tag=data["group_id_tag"].strip(),
            expires_at=timezone.now() + timedelta(minutes=data["minutes"]),
            source="portal",
            user_id=request.user.pk,
        ),
    )
    return redirect("chargers:charger-reservations", charger.station_id)


@login_required
@require_POST
def charger_reservation_cancel(request: HttpRequest, station_id: str, pk: int) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    reservation = reservations.reservations_for(charger).filter(pk=pk).first()
    if reservation is None:
        raise Http404("No such reservation")
    _send(
        request,
        "Cancel reservation",
        lambda: remote.cancel_sync(
            charger,
            reservation,
            source="portal",
            user_id=request.user.pk,
        ),
    )
    return redirect("chargers:charger-reservations", charger.station_id)


# -- Device model (OCPP 2.0.1 B05-B07) -------------------------------------------------------------


class SetVariableForm(forms.Form):
    variable = forms.IntegerField(widget=forms.HiddenInput)
    value = forms.CharField(max_length=1000, required=False, label="New value")


@login_required
def charger_device_model(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    context = _tab(request, charger, "device-model")
    rows = DeviceVariable.objects.filter(charger=charger)
    component = request.GET.get("component", "")
    if component:
        rows = rows.filter(component=component)
    variables = list(rows[:500])
    for row in variables:
        # valuesList is a comma-separated memberList (2.0.1 VariableCharacteristicsType).
        row.options = [v.strip() for v in row.values_list.split(",") if v.strip()]  # type: ignore[attr-defined]
    context.update(
        {
            "variables": variables,
            "components": list(
                DeviceVariable.objects.filter(charger=charger)
                .values_list("component", flat=True)
                .distinct()
                .order_by("component")
            ),
            "component": component,
            "monitors": list(VariableMonitor.objects.filter(charger=charger)[:200]),
            "events": list(ChargerEvent.objects.filter(charger=charger)[:20]),
        }
    )
    return render(request, "chargers/charger_device_model.html", context)


@login_required
@require_POST
def charger_set_variable(request: HttpRequest, station_id: str) -> HttpResponse:
    """SetVariables for one attribute of the device model (B05); the answer updates the row."""
    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    form = SetVariableForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a variable and a value.")
        return redirect("chargers:charger-device-model", charger.station_id)
    row = DeviceVariable.objects.filter(charger=charger, pk=form.cleaned_data["variable"]).first()
    if row is None:
        raise Http404("No such variable")
    if row.mutability == "ReadOnly":
        messages.error(request, f"{row.component}.{row.variable} is read-only on this charger.")
        return redirect("chargers:charger-device-model", charger.station_id)
    payload = {"setVariableData": [set_variable_data(row, form.cleaned_data["value"])]}
    label = f"Set {row.component}.{row.variable}"
    command = _send(
        request,
        label,
        lambda: commands.send_command_sync(
            charger,
            "SetVariables",
            payload,
            source="portal",
            user_id=request.user.pk,
        ),
        good=("Accepted", "RebootRequired"),
    )
    if command is not None and command.status == Command.Status.ANSWERED:
        for result in (command.response or {}).get("setVariableResult", []):
            info = (result.get("attributeStatusInfo") or {}).get("reasonCode", "")
            messages.info(
                request, f"{label}: {result.get('attributeStatus')}{f' ({info})' if info else ''}."
            )
    url = reverse("chargers:charger-device-model", args=[charger.station_id])
    return redirect(f"{url}?{urlencode({'component': row.component})}")


def set_variable_data(row: DeviceVariable, value: str) -> dict[str, Any]:
    """Return the SetVariableDataType naming `row` (component, EVSE/connector, variable, attribute)."""
    component: dict[str, Any] = {"name": row.component}
    if row.component_instance:
        component["instance"] = row.component_instance
    if row.evse_id:
        component["evse"] = {
            "id": row.evse_id,
            **({"connectorId": row.connector_id} if row.connector_id else {}),
        }
    variable: dict[str, Any] = {"name": row.variable}
    if row.variable_instance:
        variable["instance"] = row.variable_instance
    return {
        "attributeType": row.attribute_type,
        "attributeValue": value,
        "component": component,
        "variable": variable,
    }


# -- Smart charging (OCPP 2.0.1 K01-K17) -------------------------------------------------------------


class ChargingLimitForm(forms.Form):
    PURPOSES = [
        ("ChargingStationMaxProfile", "Maximum for the whole charger"),
        ("TxDefaultProfile", "Default for every session"),
    ]
    evse_id = forms.TypedChoiceField(label="Where", coerce=int)
    purpose = forms.ChoiceField(label="Limit", choices=PURPOSES)
    stack_level = forms.IntegerField(
        label="Stack level",
        min_value=0,
        max_value=99,
        initial=0,
        help_text="A higher level overrules a lower one of the same kind.",
    )
    unit = forms.ChoiceField(label="Unit", choices=[("A", "Amperes per phase"), ("W", "Watts")])
    limit = forms.DecimalField(label="Limit", min_value=0, max_digits=9, decimal_places=1)
    hours = forms.IntegerField(
        label="For (hours, empty: until cleared)", min_value=1, max_value=24 * 365, required=False
    )

    def __init__(self, *args: Any, charger: Charger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        numbers = list(
            charger.connectors.filter(connector_id__gt=0).values_list("connector_id", flat=True)
        )
        field = self.fields["evse_id"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(0, "Whole charger")] + [(n, f"Connector {n}") for n in numbers]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("purpose") == "ChargingStationMaxProfile" and data.get("evse_id"):
            self.add_error(
                "evse_id", "The maximum for the whole charger is set on the whole charger."
            )
        return data


class CompositeScheduleForm(forms.Form):
    evse_id = forms.IntegerField(label="Connector (0: whole charger)", min_value=0, initial=0)
    minutes = forms.IntegerField(label="Next (minutes)", min_value=1, max_value=24 * 60, initial=60)


def _profiles_in_force(charger: Charger) -> list[Any]:
    """The profiles the charger holds now: not cleared, not past their validTo, and a TxProfile
    only while its transaction runs (the charger drops it then, K01, 1.6 §3.13.1)."""
    from chargers.models import ChargingProfile, ChargingSession

    running: set[str] = set()
    for tx, ocpp_tx in ChargingSession.objects.filter(
        charger=charger, status=ChargingSession.Status.ACTIVE
    ).values_list("transaction_id", "ocpp_transaction_id"):
        running |= {str(tx), ocpp_tx} - {"", "None"}
    rows = (
        ChargingProfile.objects.filter(charger=charger)
        .exclude(status="cleared")
        .exclude(status="installed", valid_to__lt=timezone.now())
    )
    return [
        p
        for p in rows[:100]
        if not (p.status == "installed" and p.transaction_id and p.transaction_id not in running)
    ]


def _smart_context(request: HttpRequest, charger: Charger, **forms_: Any) -> dict[str, Any]:
    from chargers.models import ChargerNotice

    context = _tab(request, charger, "smart-charging")
    context.update(
        {
            "profiles": _profiles_in_force(charger),
            "notices": list(
                ChargerNotice.objects.filter(charger=charger).filter(
                    action__in=SMART_CHARGING_NOTICES
                )[:20]
            ),
            "limit_form": forms_.get("limit_form") or ChargingLimitForm(charger=charger),
            "schedule_form": forms_.get("schedule_form") or CompositeScheduleForm(),
        }
    )
    return context


@login_required
def charger_smart_charging(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    return render(request, "chargers/charger_smart_charging.html", _smart_context(request, charger))


@login_required
@require_POST
def charger_smart_charging_action(request: HttpRequest, station_id: str) -> HttpResponse:
    """Set a limit (SetChargingProfile), clear a profile (ClearChargingProfile) or ask for the
    composite schedule (GetCompositeSchedule)."""
    from chargers.models import ChargingProfile
    from chargers.ocpp.v201_smart import simple_limit_profile

    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    what = request.POST.get("what")

    def send(action: str, payload: dict[str, Any]) -> Command:
        return commands.send_command_sync(
            charger, action, payload, source="portal", user_id=request.user.pk
        )

    if what == "limit":
        form = ChargingLimitForm(request.POST, charger=charger)
        if not form.is_valid():
            return render(
                request,
                "chargers/charger_smart_charging.html",
                _smart_context(request, charger, limit_form=form),
                status=400,
            )
        data = form.cleaned_data
        profile = simple_limit_profile(
            profile_id=secrets.randbelow(2**31 - 1) + 1,
            purpose=data["purpose"],
            stack_level=data["stack_level"],
            unit=data["unit"],
            limit=float(data["limit"]),
            start=timezone.now(),
            duration_s=data["hours"] * 3600 if data["hours"] else None,
        )
        _send(
            request,
            "Charging limit",
            lambda: send(
                "SetChargingProfile", {"evseId": data["evse_id"], "chargingProfile": profile}
            ),
        )
    elif what == "clear":
        row = ChargingProfile.objects.filter(
            charger=charger, pk=request.POST.get("profile", "0") or 0
        ).first()
        if row is None:
            raise Http404("No such profile")
        _send(
            request,
            f"Clear profile {row.profile_id}",
            lambda: send("ClearChargingProfile", {"chargingProfileId": row.profile_id}),
        )
    elif what == "schedule":
        schedule_form = CompositeScheduleForm(request.POST)
        if not schedule_form.is_valid():
            return render(
                request,
                "chargers/charger_smart_charging.html",
                _smart_context(request, charger, schedule_form=schedule_form),
                status=400,
            )
        data = schedule_form.cleaned_data
        command = _send(
            request,
            "Composite schedule",
            lambda: send(
                "GetCompositeSchedule",
                {"evseId": data["evse_id"], "duration": data["minutes"] * 60},
            ),
        )
        schedule = (command.response or {}).get("schedule") if command is not None else None
        if isinstance(schedule, dict):
            periods = ", ".join(
                f"from +{p.get('startPeriod', 0) // 60} min: {p.get('limit')} {schedule.get('chargingRateUnit', '')}"
                for p in schedule.get("chargingSchedulePeriod") or []
            )
            messages.info(
                request,
                f"Composite schedule from {schedule.get('scheduleStart', '?')}: {periods or 'no limit'}.",
            )
    else:
        messages.error(request, "Unknown action.")
    return redirect("chargers:charger-smart-charging", charger.station_id)
