"""REST API of site power: /api/v1/properties/{id}/power/ (budget), .../power/reading/ (live
budget) and .../power/allocations/ (docs/power.md). Reads for members, writes for can_write."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.models import Property
from backoffice.tenancy import can_write, readable

from . import allocation, schedule, selectors, services
from .models import SiteBudget

AMPS = {"max_digits": 7, "decimal_places": 1, "min_value": Decimal(0)}
MAX_AMPS = Decimal(10000)
MAX_KW = Decimal(100000)
# Every list a request sends is bounded (a 20,000-entry schedule is refused at once, not read).
MAX_CIRCUITS = services.MAX_CIRCUITS
MAX_SCHEDULE_ENTRIES = schedule.MAX_ENTRIES
MAX_CONNECTORS = services.MAX_CONNECTORS
ROTATIONS = ["RST", "RTS", "SRT", "STR", "TRS", "TSR"]


class ScheduleEntrySerializer(serializers.Serializer):
    start = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", help_text="HH:MM, local time")
    end = serializers.RegexField(
        r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", help_text="HH:MM; before start = past midnight"
    )
    limit_a = serializers.DecimalField(**AMPS, max_value=MAX_AMPS)
    days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        allow_empty=False,
        max_length=7,
        help_text="0 = Monday … 6 = Sunday; every day when left out",
    )


class CircuitSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    limit_a = serializers.DecimalField(**AMPS, max_value=MAX_AMPS)
    parent = serializers.CharField(
        max_length=100, allow_null=True, required=False, help_text="null: the main connection"
    )


class ConnectorSerializer(serializers.Serializer):
    station_id = serializers.CharField(max_length=64)
    connector_id = serializers.IntegerField(min_value=1, max_value=99)
    phases = serializers.ChoiceField(choices=[1, 2, 3], default=3)
    phase_rotation = serializers.ChoiceField(choices=ROTATIONS, default="RST")
    min_a = serializers.DecimalField(**AMPS, max_value=Decimal(1000), default=Decimal(6))
    max_a = serializers.DecimalField(**AMPS, max_value=Decimal(1000), default=Decimal(32))
    circuit = serializers.CharField(max_length=100, allow_null=True, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["min_a"] > attrs["max_a"]:
            raise serializers.ValidationError({"min_a": "The minimum is above the maximum."})
        return attrs


class LiveSerializer(serializers.Serializer):
    limit_a = serializers.DecimalField(max_digits=7, decimal_places=1, allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class PowerSerializer(serializers.Serializer):
    limit_a = serializers.DecimalField(
        **AMPS,
        max_value=MAX_AMPS,
        required=False,
        help_text="Amperes per phase (the main fuse); or give limit_kw",
    )
    limit_kw = serializers.DecimalField(
        max_digits=9,
        decimal_places=3,
        min_value=Decimal(0),
        max_value=MAX_KW,
        required=False,
        write_only=True,
        help_text="Or the budget in kW, converted to amperes per phase with voltage and phases",
    )
    phases = serializers.ChoiceField(choices=[1, 3], default=3)
    voltage = serializers.IntegerField(min_value=100, max_value=480, default=230)
    policy = serializers.ChoiceField(choices=["equal", "priority"], default="equal")
    schedule = ScheduleEntrySerializer(
        many=True, required=False, default=list, max_length=MAX_SCHEDULE_ENTRIES
    )
    circuits = CircuitSerializer(many=True, required=False, max_length=MAX_CIRCUITS)
    connectors = ConnectorSerializer(
        many=True,
        required=False,
        max_length=MAX_CONNECTORS,
        help_text="Electrical data per connector; left as is if absent",
    )
    limit_in_force_a = serializers.DecimalField(max_digits=7, decimal_places=1, read_only=True)
    source = serializers.ChoiceField(
        choices=["live", "schedule", "static"], read_only=True, help_text="Where it comes from"
    )
    live = LiveSerializer(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_schedule(self, value: list[dict]) -> list[dict]:
        entries = []
        for e in value:
            entry: dict[str, Any] = {"start": e["start"], "end": e["end"]}
            entry["limit_a"] = str(e["limit_a"])
            if "days" in e:
                entry["days"] = sorted(set(e["days"]))
            entries.append(entry)
        try:
            schedule.parse_schedule(entries)
        except schedule.ScheduleError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return entries

    def validate_circuits(self, value: list[dict]) -> list[services.CircuitSpec]:
        specs = [
            services.CircuitSpec(c["name"], c["limit_a"], c.get("parent") or None) for c in value
        ]
        try:
            services.check_circuits(specs)
        except allocation.CircuitError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return specs

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("limit_a" in attrs) == ("limit_kw" in attrs):
            raise serializers.ValidationError({"limit_a": "Give either limit_a or limit_kw."})
        if "limit_kw" in attrs:
            attrs["limit_a"] = allocation.amps_from_kw(
                attrs.pop("limit_kw"), voltage=attrs["voltage"], phases=attrs["phases"]
            )
            if attrs["limit_a"] > MAX_AMPS:
                raise serializers.ValidationError({"limit_kw": "That is more than 10000 A."})
        return self._connectors(attrs)

    def _connectors(self, attrs: dict[str, Any]) -> dict[str, Any]:
        prop: Property = self.context["property"]
        connectors = attrs.get("connectors")
        if connectors is None:
            return attrs
        names = (
            {c.name for c in attrs["circuits"]}
            if "circuits" in attrs
            else set(selectors.circuits_of(prop.pk).values_list("name", flat=True))
        )
        chargers = dict(selectors.chargers_of(prop.pk).values_list("station_id", "pk"))
        specs, seen, errors = [], set(), []
        for i, c in enumerate(connectors, start=1):
            if c["station_id"] not in chargers:
                errors.append(f"Connector {i}: no charger {c['station_id']} at this location.")
            elif c.get("circuit") and c["circuit"] not in names:
                errors.append(f"Connector {i}: no circuit named {c['circuit']}.")
            elif (c["station_id"], c["connector_id"]) in seen:
                errors.append(f"Connector {i}: {c['station_id']}/{c['connector_id']} twice.")
            else:
                seen.add((c["station_id"], c["connector_id"]))
                specs.append(
                    services.ConnectorSpec(
                        charger_id=chargers[c["station_id"]],
                        connector_id=c["connector_id"],
                        phases=c["phases"],
                        phase_rotation=c["phase_rotation"],
                        min_a=c["min_a"],
                        max_a=c["max_a"],
                        circuit=c.get("circuit") or None,
                    )
                )
        if errors:
            raise serializers.ValidationError({"connectors": errors})
        attrs["connectors"] = specs
        return attrs


class ReadingSerializer(serializers.Serializer):
    limit_a = serializers.DecimalField(
        **AMPS, max_value=MAX_AMPS, required=False, help_text="Amperes per phase available now"
    )
    limit_kw = serializers.DecimalField(
        max_digits=9,
        decimal_places=3,
        min_value=Decimal(0),
        max_value=MAX_KW,
        required=False,
        help_text="Or the power available now, in kW (converted with the site's voltage)",
    )
    valid_for_s = serializers.IntegerField(
        min_value=10,
        max_value=86400,
        default=300,
        help_text="Seconds the reading holds; then the schedule or static limit applies again",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("limit_a" in attrs) == ("limit_kw" in attrs):
            raise serializers.ValidationError("Give either limit_a or limit_kw.")
        return attrs


class AllocationSerializer(serializers.Serializer):
    station_id = serializers.CharField()
    connector_id = serializers.IntegerField()
    limit_a = serializers.DecimalField(max_digits=7, decimal_places=1)
    measured_a = serializers.DecimalField(max_digits=7, decimal_places=1, allow_null=True)
    waiting = serializers.BooleanField()
    reason = serializers.CharField()
    priority_class = serializers.CharField()
    session_id = serializers.IntegerField(allow_null=True)
    applied_limit_a = serializers.DecimalField(max_digits=7, decimal_places=1, allow_null=True)
    # The same limits in watts over the phases the car draws on, and the unit its charger takes.
    limit_w = serializers.DecimalField(max_digits=10, decimal_places=0, allow_null=True)
    applied_limit_w = serializers.DecimalField(max_digits=10, decimal_places=0, allow_null=True)
    number_phases = serializers.IntegerField(allow_null=True)
    unit = serializers.CharField()
    refused = serializers.BooleanField()
    updated_at = serializers.DateTimeField()


def budget_json(site: SiteBudget) -> dict[str, Any]:
    in_force = services.budget_in_force(site, timezone.now())
    return {
        "limit_a": site.limit_a,
        "phases": site.phases,
        "voltage": site.voltage,
        "policy": site.policy,
        "schedule": site.schedule,
        "circuits": [
            {"name": c.name, "limit_a": c.limit_a, "parent": c.parent.name if c.parent else None}
            for c in selectors.circuits_of(site.property_id)
        ],
        "connectors": [
            {
                "station_id": c.charger.station_id,
                "connector_id": c.connector_id,
                "phases": c.phases,
                "phase_rotation": c.phase_rotation,
                "min_a": c.min_a,
                "max_a": c.max_a,
                "circuit": c.circuit.name if c.circuit else None,
            }
            for c in selectors.connectors_of(site.property_id)
        ],
        "limit_in_force_a": in_force.limit_a,
        "source": in_force.source,
        "live": {
            "limit_a": site.live_limit_a,
            "at": site.live_at,
            "expires_at": site.live_expires_at,
        },
        "updated_at": site.updated_at,
    }


class _PropertyView(APIView):
    def property_for(self, request: Request, property_id: int, *, write: bool) -> Property:
        prop = get_object_or_404(readable(Property.objects.all(), request.user), pk=property_id)
        if write and not can_write(request.user, prop.organization_id):
            raise PermissionDenied("Your role in this organization is read-only.")
        return prop


class PowerView(_PropertyView):
    """GET/PUT/DELETE /api/v1/properties/{id}/power/: the site's power budget."""

    serializer_class = PowerSerializer

    @extend_schema(responses=PowerSerializer)
    def get(self, request: Request, property_id: int) -> Response:
        prop = self.property_for(request, property_id, write=False)
        site = selectors.budget_get(prop.pk)
        if site is None:
            raise NotFound("This location has no power budget yet: PUT one.")
        return Response(PowerSerializer(budget_json(site)).data)

    @extend_schema(request=PowerSerializer, responses=PowerSerializer)
    def put(self, request: Request, property_id: int) -> Response:
        prop = self.property_for(request, property_id, write=True)
        serializer = PowerSerializer(data=request.data, context={"property": prop})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        site = services.budget_save(
            property_id=prop.pk,
            limit_a=data["limit_a"],
            phases=data["phases"],
            voltage=data["voltage"],
            policy=data["policy"],
            schedule_entries=data["schedule"],
            circuits=data.get("circuits"),
            connectors=data.get("connectors"),
        )
        return Response(PowerSerializer(budget_json(site)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, property_id: int) -> Response:
        prop = self.property_for(request, property_id, write=True)
        services.budget_delete(property_id=prop.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PowerReadingView(_PropertyView):
    """POST /api/v1/properties/{id}/power/reading/: the live budget (a building meter)."""

    serializer_class = ReadingSerializer

    @extend_schema(request=ReadingSerializer, responses=PowerSerializer)
    def post(self, request: Request, property_id: int) -> Response:
        prop = self.property_for(request, property_id, write=True)
        serializer = ReadingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        site = selectors.budget_get(prop.pk)
        if site is None:
            raise NotFound("This location has no power budget yet: PUT one first.")
        limit_a = data.get("limit_a")
        if limit_a is None:
            limit_a = allocation.amps_from_kw(
                data["limit_kw"], voltage=site.voltage, phases=site.phases
            )
            if limit_a > MAX_AMPS:
                raise serializers.ValidationError(
                    {"limit_kw": f"That is more than {MAX_AMPS} A per phase at this site."}
                )
        site = services.live_reading_record(
            property_id=prop.pk,
            limit_a=limit_a,
            valid_for=timedelta(seconds=data["valid_for_s"]),
        )
        if site is None:  # removed meanwhile
            raise NotFound("This location has no power budget yet: PUT one first.")
        return Response(PowerSerializer(budget_json(site)).data, status=status.HTTP_201_CREATED)


class PowerAllocationsView(_PropertyView):
    """GET /api/v1/properties/{id}/power/allocations/: each connector's limit now."""

    serializer_class = AllocationSerializer

    @extend_schema(responses=AllocationSerializer(many=True))
    def get(self, request: Request, property_id: int) -> Response:
        prop = self.property_for(request, property_id, write=False)
        allocations = list(selectors.allocations_of(prop.pk))
        units = selectors.in_both_units(allocations, selectors.budget_get(prop.pk))
        blank = {"unit": "A", "number_phases": None, "limit_w": None, "applied_limit_w": None}
        rows = [
            {
                **units.get(a.pk, blank),
                "station_id": a.charger.station_id,
                "connector_id": a.connector_id,
                "limit_a": a.limit_a,
                "measured_a": a.measured_a,
                "waiting": a.waiting,
                "reason": a.reason,
                "priority_class": a.priority_class,
                "session_id": a.session_id,
                "applied_limit_a": a.applied_limit_a,
                "refused": a.refused,
                "updated_at": a.updated_at,
            }
            for a in allocations
        ]
        return Response(AllocationSerializer(rows, many=True).data)
