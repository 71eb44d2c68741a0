"""REST API of configuration baselines (docs/operations.md): /api/v1/config-baselines/ with
their settings (a change is a new version), `apply/` (on demand, at the fleet's pace) and
`chargers/` (each charger's drift and last application). Reads for members, writes for
can_write, every object of the request's own organization."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backoffice.api import TenantViewSetMixin
from backoffice.models import Organization
from backoffice.tenancy import TenantSerializerMixin, readable_organization_ids
from fleet.models import Baseline, BaselineApplication, BaselineSetting

from . import services

MAX_SETTINGS = 500
MAX_IDS = 5000


class SettingSerializer(serializers.ModelSerializer):
    evse_id = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    connector_id = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    attribute_type = serializers.ChoiceField(
        choices=["Actual", "Target", "MinSet", "MaxSet"], required=False
    )

    class Meta:
        model = BaselineSetting
        fields = [
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            "value",
        ]


class BaselineSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization",)
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())
    settings = SettingSerializer(many=True, max_length=MAX_SETTINGS)

    class Meta:
        model = Baseline
        fields = [
            "id",
            "organization",
            "name",
            "vendor",
            "model",
            "protocol",
            "version",
            "apply_on_boot",
            "reboot_when_required",
            "settings",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["version", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and (
            "organization" in attrs and attrs["organization"] != self.instance.organization
        ):
            raise serializers.ValidationError({"organization": "A baseline stays where it is."})
        return attrs

    def _save_settings(self, baseline: Baseline, items: list[dict] | None) -> Baseline:
        if items is None:
            return baseline
        try:
            return services.baseline_settings_replace(baseline_id=baseline.pk, items=items)
        except services.BaselineRefused as exc:
            raise ValidationError({"settings": [str(exc)]}) from None

    def create(self, validated_data: dict[str, Any]) -> Baseline:
        items = validated_data.pop("settings", [])
        try:
            with transaction.atomic():
                baseline = Baseline.objects.create(**validated_data, version=0)
                return self._save_settings(baseline, items)
        except IntegrityError:
            raise ValidationError(
                {"detail": "This vendor/model already has a baseline on this protocol."}
            ) from None

    def update(self, instance: Baseline, validated_data: dict[str, Any]) -> Baseline:
        items = validated_data.pop("settings", None)
        try:
            with transaction.atomic():
                for field, value in validated_data.items():
                    setattr(instance, field, value)
                instance.save()
                return self._save_settings(instance, items)
        except IntegrityError:
            raise ValidationError(
                {"detail": "This vendor/model already has a baseline on this protocol."}
            ) from None


class ApplySerializer(serializers.Serializer):
    station_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=MAX_IDS
    )


class ApplicationSerializer(serializers.ModelSerializer):
    class Meta:
        model = BaselineApplication
        fields = ["version", "trigger", "outcome", "results", "applied_at", "requested_at"]


def _readable(queryset: QuerySet, user: Any) -> QuerySet:
    ids = readable_organization_ids(user)
    return queryset if ids is None else queryset.filter(organization_id__in=ids)


class BaselineViewSet(
    TenantViewSetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = BaselineSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Baseline]:
        return _readable(
            Baseline.objects.prefetch_related("settings").order_by("pk"), self.request.user
        )

    def perform_create(self, serializer: BaselineSerializer) -> None:
        self.require_edit(serializer.validated_data["organization"].pk)
        serializer.save()

    @extend_schema(request=ApplySerializer, responses={202: {"type": "object"}})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Apply the baseline (on demand) to the listed chargers, or all of its chargers; they
        are sent it at the fleet's pace (the beat task fleet.baselines_apply)."""
        baseline = self.get_object()
        self.check_object_permissions(request, baseline)
        serializer = ApplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        station_ids = serializer.validated_data.get("station_ids")
        charger_ids = None
        if station_ids is not None:
            found = dict(
                services.chargers_of(baseline)
                .filter(station_id__in=station_ids)
                .values_list("station_id", "pk")
            )
            missing = [s for s in station_ids if s not in found]
            if missing:  # another organization's charger answers like one that does not exist
                raise ValidationError(
                    {"station_ids": [f"Not a charger of this baseline: {missing[0]}"]}
                )
            charger_ids = list(found.values())
        queued = services.apply_request(baseline=baseline, charger_ids=charger_ids)
        return Response({"queued": queued}, status=202)

    @extend_schema(request=None, responses={200: {"type": "object"}})
    @action(detail=True, methods=["get"])
    def chargers(self, request: Request, pk: str | None = None) -> Response:
        """The baseline's chargers: values drifting from it, and the last application."""
        baseline = self.get_object()
        chargers = services.chargers_of(baseline).order_by("station_id", "pk")
        page = self.paginate_queryset(chargers)
        rows = services.baseline_chargers(baseline, list(page if page is not None else chargers))
        data = [
            {
                "station_id": charger.station_id,
                "drifted": drifted,
                "application": ApplicationSerializer(application).data if application else None,
            }
            for charger, drifted, application in rows
        ]
        return self.get_paginated_response(data) if page is not None else Response(data)
