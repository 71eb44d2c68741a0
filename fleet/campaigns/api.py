"""REST API of firmware campaigns (docs/firmware.md): /api/v1/firmware/releases/,
/api/v1/firmware/campaigns/ and each campaign's targets with their timelines. Reads for members,
writes for can_write, every object of the request's own organization."""

from __future__ import annotations

from typing import Any

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
from chargers.models import Charger
from fleet.models import Campaign, CampaignTarget, FirmwareRelease, TargetEvent

from . import hosting, log_requests, services

MAX_IDS = 5000


def _readable(queryset: QuerySet, user: Any) -> QuerySet:
    ids = readable_organization_ids(user)
    return queryset if ids is None else queryset.filter(organization_id__in=ids)


class ReleaseSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization",)
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())
    signed = serializers.BooleanField(read_only=True)

    class Meta:
        model = FirmwareRelease
        fields = [
            "id",
            "organization",
            "version",
            "vendor",
            "model",
            "location",
            "sha256",
            "signing_certificate",
            "signature",
            "signed",
            "bad",
            "bad_reason",
            "notes",
            "file_name",
            "file_size",
            "created_at",
        ]
        read_only_fields = ["bad", "bad_reason", "file_name", "file_size", "created_at"]
        extra_kwargs = {
            "signing_certificate": {"max_length": 5500},  # 1.6 security whitepaper limits
            "signature": {"max_length": 800},
        }

    def validate_location(self, value: str) -> str:
        # L01.FR.08: firmware is downloaded over HTTPS.
        if not value.lower().startswith("https://"):
            raise serializers.ValidationError("The firmware must be served over HTTPS.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        certificate = attrs.get("signing_certificate", "")
        signature = attrs.get("signature", "")
        if bool(certificate) != bool(signature):
            raise serializers.ValidationError(
                "A signed release needs both its signing certificate and its signature."
            )
        return attrs


class ReleaseViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    serializer_class = ReleaseSerializer
    http_method_names = ["get", "post", "head", "options"]
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[FirmwareRelease]:
        return _readable(FirmwareRelease.objects.order_by("pk"), self.request.user)

    def perform_create(self, serializer: ReleaseSerializer) -> None:
        self.require_edit(serializer.validated_data["organization"].pk)
        serializer.save()

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={200: ReleaseSerializer},
    )
    @action(detail=True, methods=["post"])
    def file(self, request: Request, pk: str | None = None) -> Response:
        """Host the release's file here: kept only with the release's SHA-256; the release's
        location becomes its HTTPS address on this site."""
        release = self.get_object()
        self.check_object_permissions(request, release)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Send the firmware file as multipart field 'file'."]})
        try:
            release = hosting.release_file_store(release_id=release.pk, upload=upload)
        except hosting.HostingRefused as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        return Response(ReleaseSerializer(release, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses={200: ReleaseSerializer})
    @action(detail=True, methods=["post"], url_path="mark-bad")
    def mark_bad(self, request: Request, pk: str | None = None) -> Response:
        """Hold the release in every campaign: nothing more is sent."""
        release = self.get_object()
        reason = request.data.get("reason", "")
        if not isinstance(reason, str):
            raise ValidationError({"reason": ["Say why in words (a string)."]})
        reason = (reason.strip() or "Marked bad.")[:200]
        services.release_mark_bad(release_id=release.pk, reason=reason)
        release.refresh_from_db()
        return Response(ReleaseSerializer(release, context=self.get_serializer_context()).data)


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TargetEvent
        fields = ["at", "status", "details"]


class TargetSerializer(serializers.ModelSerializer):
    station_id = serializers.CharField(source="charger.station_id", read_only=True)
    events = EventSerializer(many=True, read_only=True)

    class Meta:
        model = CampaignTarget
        fields = [
            "station_id",
            "position",
            "status",
            "method",
            "request_id",
            "previous_version",
            "reason",
            "sent_at",
            "finished_at",
            "events",
        ]


class CampaignSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization", "release")
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())
    release = serializers.PrimaryKeyRelatedField(queryset=FirmwareRelease.objects.all())
    # The selection (all given filters apply; write only: the targets say who was chosen).
    property_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        write_only=True,
        max_length=MAX_IDS,
    )
    station_ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        write_only=True,
        max_length=MAX_IDS,
    )
    vendor = serializers.CharField(max_length=50, required=False, write_only=True)
    model = serializers.CharField(max_length=50, required=False, write_only=True)
    current_version = serializers.CharField(max_length=50, required=False, write_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "organization",
            "name",
            "release",
            "status",
            "status_reason",
            "canary_share",
            "wave_size",
            "success_threshold",
            "max_failures",
            "report_timeout_s",
            "property_ids",
            "station_ids",
            "vendor",
            "model",
            "current_version",
            "counts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = ["status", "status_reason", "created_at", "started_at", "finished_at"]

    def get_counts(self, campaign: Campaign) -> dict[str, int]:
        counts = {s: 0 for s in CampaignTarget.Status.values}
        for status in campaign.targets.values_list("status", flat=True):
            counts[status] += 1
        return counts


class LogRequestSerializer(serializers.Serializer):
    # HTTP(S) or FTP(S) (DRF's URLField): where the chargers upload; the charger calls it, we do not.
    remote_location = serializers.URLField(max_length=512)
    station_ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=log_requests.MAX_CHARGERS,
    )
    failed_only = serializers.BooleanField(default=False)


class CampaignViewSet(
    TenantViewSetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CampaignSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Campaign]:
        return _readable(
            Campaign.objects.select_related("release").order_by("pk"), self.request.user
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        organization = data["organization"]
        self.require_edit(organization.pk)
        station_ids = data.get("station_ids") or []
        charger_ids: list[int] = []
        if station_ids:
            found = dict(
                Charger.objects.filter(
                    property__organization=organization, station_id__in=station_ids
                ).values_list("station_id", "pk")
            )
            missing = [s for s in station_ids if s not in found]
            if missing:
                # Another organization's charger answers like one that does not exist.
                raise ValidationError({"station_ids": [f"Unknown charger: {missing[0]}"]})
            charger_ids = list(found.values())
        try:
            campaign = services.campaign_create(
                organization=organization,
                name=data["name"],
                release=data["release"],
                selection=services.Selection(
                    property_ids=tuple(data.get("property_ids") or ()),
                    vendor=data.get("vendor", ""),
                    model=data.get("model", ""),
                    current_version=data.get("current_version", ""),
                    charger_ids=tuple(charger_ids),
                ),
                canary_share=data.get("canary_share", 0.1),
                wave_size=data.get("wave_size", 10),
                success_threshold=data.get("success_threshold", 0.95),
                max_failures=data.get("max_failures", 1),
                report_timeout_s=data.get("report_timeout_s", 3600),
                user=request.user,
            )
        except services.CampaignRefused as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(self.get_serializer(campaign).data, status=201)

    def _transition(self, request: Request, what: str) -> Response:
        campaign = self.get_object()
        self.check_object_permissions(request, campaign)
        try:
            campaign = services.campaign_transition(campaign_id=campaign.pk, action=what)
        except services.CampaignRefused as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(self.get_serializer(campaign).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, "start")

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, "pause")

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, "resume")

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def halt(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, "halt")

    @extend_schema(request=LogRequestSerializer, responses={200: {"type": "object"}})
    @action(detail=True, methods=["post"])
    def logs(self, request: Request, pk: str | None = None) -> Response:
        """Ask the campaign's chargers (listed, failed, or all) to upload their diagnostics log
        (GetLog; 1.6 without it: GetDiagnostics). Each charger's answer, in words."""
        campaign = self.get_object()
        self.check_object_permissions(request, campaign)
        serializer = LogRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            answers = log_requests.campaign_logs(
                campaign_id=campaign.pk,
                remote_location=data["remote_location"],
                station_ids=data.get("station_ids") or [],
                failed_only=data["failed_only"],
            )
        except log_requests.TooMany as exc:
            raise ValidationError({"station_ids": [str(exc)]}) from None
        return Response(answers)

    @extend_schema(responses={200: TargetSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def targets(self, request: Request, pk: str | None = None) -> Response:
        """Each charger of the campaign with its status timeline."""
        campaign = self.get_object()
        targets = campaign.targets.select_related("charger").prefetch_related("events")
        # A page at a time, like every list of the API (a campaign may hold thousands).
        page = self.paginate_queryset(targets.order_by("pk"))
        return self.get_paginated_response(TargetSerializer(page, many=True).data)
