"""REST API of stays: units, reservations (with ?active_at=), a property's calendar feeds."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backoffice.api import TenantViewSetMixin
from backoffice.models import Property
from backoffice.tenancy import TenantSerializerMixin, can_write, readable

from . import selectors, services
from .models import CalendarFeed, Reservation, Unit

logger = logging.getLogger(__name__)


def _drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(
        exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    )


class UnitSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("property",)

    class Meta:
        model = Unit
        fields = ["id", "property", "name", "kind", "external_id", "created_at"]
        read_only_fields = ["created_at"]
        validators: list = []  # the unique (property, name) check answers below, in words

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        prop = attrs.get("property") or getattr(self.instance, "property", None)
        name = str(attrs.get("name") or getattr(self.instance, "name", "")).strip()
        clash = Unit.objects.filter(property=prop, name__iexact=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError({"name": "This property already has a unit with this name."})
        return attrs


class UnitViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    """Units of your properties (apartments, parking spaces, cabins)."""

    serializer_class = UnitSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["property"]
    protected_delete_hint = "move its chargers first"

    def get_queryset(self) -> Any:
        return selectors.units_for(self.request.user).order_by("property_id", "name")

    def organization_id_of(self, obj: Unit) -> int:
        return obj.property.organization_id

    def perform_create(self, serializer: UnitSerializer) -> None:
        self.require_edit(serializer.validated_data["property"].organization_id)
        try:
            serializer.instance = services.unit_create(**serializer.validated_data)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None

    def perform_update(self, serializer: UnitSerializer) -> None:
        fields = {k: v for k, v in serializer.validated_data.items() if k != "property"}
        try:
            serializer.instance = services.unit_update(unit=serializer.instance, **fields)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None


class StayReservationSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("property",)
    access_link = serializers.SerializerMethodField()

    class Meta:
        model = Reservation
        fields = [
            "id",
            "property",
            "unit",
            "guest_name",
            "guest_email",
            "guest_phone",
            "check_in",
            "check_out",
            "source",
            "external_id",
            "status",
            "access_code",
            "access_link",
            "code_sent_at",
            "calendar",
            "integration",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "source",
            "access_code",
            "code_sent_at",
            "calendar",
            "integration",
            "created_at",
            "updated_at",
        ]

    def get_access_link(self, obj: Reservation) -> str:
        request = self.context.get("request")
        return services.access_link(obj, request.build_absolute_uri("/") if request else "")


class ReservationViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    """Guests' stays. `?active_at=<ISO time>` lists the confirmed stays under way at that time;
    cancelled stays are listed only with `?status=cancelled`."""

    serializer_class = StayReservationSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = ["property", "unit", "status", "source"]

    @extend_schema(
        parameters=[OpenApiParameter("active_at", str, description="ISO 8601 date-time")]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        rows = selectors.reservations_for(self.request.user).order_by("check_in", "id")
        if self.action == "list" and not self.request.query_params.get("status"):
            rows = rows.exclude(status=Reservation.Status.CANCELLED)
        at = self.request.query_params.get("active_at")
        if at:
            when = parse_datetime(at)
            if when is None or when.tzinfo is None:
                raise ValidationError(
                    {
                        "active_at": "Use an ISO 8601 date-time with a time zone, e.g. 2026-07-01T12:00:00Z."
                    }
                )
            rows = selectors.reservations_active_at(rows, when)
        return rows

    def organization_id_of(self, obj: Reservation) -> int:
        return obj.property.organization_id

    def perform_create(self, serializer: StayReservationSerializer) -> None:
        self.require_edit(serializer.validated_data["property"].organization_id)
        try:
            serializer.instance = services.reservation_create(**serializer.validated_data)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None

    def perform_update(self, serializer: StayReservationSerializer) -> None:
        fields = {k: v for k, v in serializer.validated_data.items() if k != "property"}
        try:
            serializer.instance = services.reservation_update(
                reservation=serializer.instance, **fields
            )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None


class CalendarFeedSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = CalendarFeed
        fields = [
            "id",
            "property",
            "unit",
            "name",
            "url",
            "state",
            "last_synced_at",
            "last_success_at",
            "last_error",
            "bookings_seen",
            "blocked_seen",
            "cancelled_count",
            "created_at",
        ]
        read_only_fields = [
            "property",
            "state",
            "last_synced_at",
            "last_success_at",
            "last_error",
            "bookings_seen",
            "blocked_seen",
            "cancelled_count",
            "created_at",
        ]
        extra_kwargs = {"name": {"required": False}}


class PropertyCalendarsView(generics.ListCreateAPIView):
    """GET/POST /api/v1/properties/{id}/calendars/: a property's (or its units') iCal feeds."""

    serializer_class = CalendarFeedSerializer
    pagination_class = None
    queryset = CalendarFeed.objects.none()  # for the schema; requests use get_queryset

    def _property(self) -> Property:
        return get_object_or_404(
            readable(Property.objects.select_related("organization"), self.request.user),
            pk=self.kwargs["property_id"],
        )

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular builds the schema
            return CalendarFeed.objects.none()
        return CalendarFeed.objects.filter(property=self._property()).select_related("unit")

    def perform_create(self, serializer: CalendarFeedSerializer) -> None:
        prop = self._property()
        if not can_write(self.request.user, prop.organization_id):
            raise PermissionDenied("Your role in this organization is read-only.")
        data = serializer.validated_data
        try:
            feed = services.calendar_feed_create(
                property=prop,
                name=data.get("name", ""),
                url=data["url"],
                unit=data.get("unit"),
            )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        from .tasks import calendar_feed_sync_task

        try:
            calendar_feed_sync_task.delay(feed.pk)  # the first pull right away
        except Exception:
            # The task queue is down: the feed is saved ("not synced yet") and the beat pulls a
            # feed never synced on its next round; the host's request still succeeds.
            logger.warning("Calendar %s: first pull not queued", feed.pk, exc_info=True)
        feed.refresh_from_db()
        serializer.instance = feed


class CalendarFeedViewSet(
    TenantViewSetMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """All calendar feeds of your properties; POST .../{id}/sync/ pulls one now."""

    serializer_class = CalendarFeedSerializer
    filterset_fields = ["property", "unit", "state"]

    def get_queryset(self) -> Any:
        return selectors.calendar_feeds_for(self.request.user).order_by("property_id", "name")

    def organization_id_of(self, obj: CalendarFeed) -> int:
        return obj.property.organization_id

    def perform_destroy(self, instance: CalendarFeed) -> None:
        services.calendar_feed_delete(feed=instance)  # the same service as the portal's Remove

    @extend_schema(request=None, responses={200: CalendarFeedSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        feed = self.get_object()  # a POST: OrganizationWritePermission checks the role
        services.calendar_feed_sync(feed_id=feed.pk)
        feed.refresh_from_db()
        return Response(self.get_serializer(feed).data, status=status.HTTP_200_OK)
