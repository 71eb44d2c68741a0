"""REST API for what a 2.0.1 charger holds and reports: charging profiles, limit and EV
notifications, variable monitors (read-only; change them with the commands endpoint:
SetChargingProfile, ClearChargingProfile, SetVariableMonitoring, ...), and clearing monitors in
as many ClearVariableMonitoring requests as the charger's ItemsPerMessage allows.

Mixed into chargers.web.api.ChargerViewSet, so the charger is resolved tenant-scoped.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backoffice.pagination import query_bool
from chargers.models import ChargerNotice, ChargingProfile, VariableMonitor


class ChargingProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChargingProfile
        fields = [
            "profile_id",
            "evse_id",
            "stack_level",
            "purpose",
            "kind",
            "transaction_id",
            "valid_from",
            "valid_to",
            "status",
            "charger_answer",
            "source",
            "profile",
            "updated_at",
        ]
        read_only_fields = fields


class NoticeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChargerNotice
        fields = ["id", "action", "evse_id", "summary", "payload", "received_at"]
        read_only_fields = fields


class MonitorSerializer(serializers.ModelSerializer):
    class Meta:
        model = VariableMonitor
        fields = [
            "monitor_id",
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "type",
            "value",
            "severity",
            "transaction",
            "kind",
            "updated_at",
        ]
        read_only_fields = fields


class ClearMonitorsSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=0), min_length=1, max_length=1000
    )


class ChargerV201ApiMixin:
    """Read endpoints of ChargerViewSet for 2.0.1 smart charging and monitoring."""

    get_object: Any
    require_edit: Any
    organization_id_of: Any

    @extend_schema(
        parameters=[OpenApiParameter("all", bool, description="Include cleared profiles.")],
        responses={200: ChargingProfileSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="charging-profiles",
        filter_backends=[],
        pagination_class=None,
    )
    def charging_profiles(self, request: Request, station_id: str | None = None) -> Response:
        """Charging profiles the charger holds as far as we know (set by us and accepted, or reported)."""
        rows = ChargingProfile.objects.filter(charger=self.get_object())
        if not query_bool(request, "all"):
            rows = rows.exclude(status=ChargingProfile.Status.CLEARED)
        return Response(ChargingProfileSerializer(rows[:200], many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("action", str)], responses={200: NoticeSerializer(many=True)}
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def notices(self, request: Request, station_id: str | None = None) -> Response:
        """NotifyChargingLimit, ClearedChargingLimit, NotifyEVChargingNeeds/Schedule and
        NotifyMonitoringReport messages, newest first (100)."""
        rows = ChargerNotice.objects.filter(charger=self.get_object())
        if request.query_params.get("action"):
            rows = rows.filter(action=request.query_params["action"])
        return Response(NoticeSerializer(rows[:100], many=True).data)

    @extend_schema(responses={200: MonitorSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def monitors(self, request: Request, station_id: str | None = None) -> Response:
        """Monitors on the charger's device-model variables."""
        return Response(
            MonitorSerializer(
                VariableMonitor.objects.filter(charger=self.get_object())[:500], many=True
            ).data
        )

    @extend_schema(request=ClearMonitorsSerializer, responses={200: {"type": "object"}})
    @action(
        detail=True,
        methods=["post"],
        url_path="monitors/clear",
        filter_backends=[],
        pagination_class=None,
    )
    def monitors_clear(self, request: Request, station_id: str | None = None) -> Response:
        """Clear monitors by id (N06): the charger's MonitoringCtrlr.ItemsPerMessage is asked
        first and the ids go out in requests of at most that many (chargers.devices.monitoring)."""
        from chargers.devices import commands
        from chargers.devices.remote import clear_monitors_sync

        charger = self.get_object()
        self.require_edit(self.organization_id_of(charger))
        body = ClearMonitorsSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        if not charger.speaks_v2():
            return Response({"detail": "Monitors are an OCPP 2.0.1 feature."}, status=400)
        try:
            sent = clear_monitors_sync(
                charger, body.validated_data["ids"], source="api", user_id=request.user.pk
            )
        except commands.ChargerOffline:
            return Response(
                {"status": "offline", "detail": "The charger is not connected."}, status=409
            )
        except commands.CommandTimeout as exc:
            return Response({"status": "timeout", "detail": exc.command.error}, status=504)
        except commands.InvalidCommand as exc:
            return Response({"status": "invalid", "detail": exc.error.description}, status=400)
        return Response(
            {
                "requests": [
                    {"ids": c.payload.get("id"), "status": c.status, "response": c.response}
                    for c in sent
                ]
            }
        )
