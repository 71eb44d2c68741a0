"""GET/POST /api/v1/chargers/{station_id}/backoffices/ and GET/PATCH/DELETE .../{id}/ (docs/proxy.md).

Readers of the charger's organization see its upstreams; owners and managers change them. Every
write goes through chargers.proxy.services (the same functions as the portal and the admin)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.tenancy import can_write
from chargers.models import Charger
from chargers.proxy import rules, services
from chargers.proxy.models import Backoffice
from chargers.web.selectors import charger_for_user


class BackofficeSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(
        max_length=400, help_text="ws:// or wss:// base URL; the station id is appended."
    )
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Basic auth password at that backoffice (username: the station id). Never returned.",
    )
    role = serializers.ChoiceField(
        choices=Backoffice.Role.choices, default=Backoffice.Role.FOLLOWER
    )
    allowed_actions = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=100,
        help_text="CSMS-to-charger actions this backoffice may send through us. A Leader may send all.",
    )
    status = serializers.CharField(read_only=True)
    last_error = serializers.CharField(read_only=True)
    connected_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_message_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, instance: Backoffice) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.is_leader:
            data["allowed_actions"] = rules.csms_actions(instance.charger.ocpp_version)
        else:
            data["allowed_actions"] = list(instance.allowed_actions)
        return data


def _charger(request: Request, station_id: str, *, write: bool) -> Charger:
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404
    if write and not can_write(request.user, charger.organization_id):
        raise PermissionDenied("Your role in this organization is read-only.")
    return charger


def _save(
    charger: Charger, data: dict[str, Any], backoffice: Backoffice | None = None
) -> Backoffice:
    current = backoffice
    try:
        return services.backoffice_save(
            charger,
            backoffice=backoffice,
            name=data.get("name", current.name if current else ""),
            url=data.get("url", current.url if current else ""),
            role=data.get("role", current.role if current else Backoffice.Role.FOLLOWER),
            allowed_actions=data.get("allowed_actions"),
            password=data.get("password"),
        )
    except DjangoValidationError as exc:
        raise ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        ) from None


class BackofficeListView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = BackofficeSerializer

    @extend_schema(responses=BackofficeSerializer(many=True))
    def get(self, request: Request, station_id: str) -> Response:
        charger = _charger(request, station_id, write=False)
        rows = charger.backoffices.select_related("charger").order_by("id")
        return Response(BackofficeSerializer(rows, many=True).data)

    @extend_schema(request=BackofficeSerializer, responses={201: BackofficeSerializer})
    def post(self, request: Request, station_id: str) -> Response:
        charger = _charger(request, station_id, write=True)
        serializer = BackofficeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "allowed_actions" not in data:
            data["allowed_actions"] = []  # a follower may send nothing until allowed
        return Response(
            BackofficeSerializer(_save(charger, data)).data, status=status.HTTP_201_CREATED
        )


class BackofficeDetailView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = BackofficeSerializer

    def _object(
        self, request: Request, station_id: str, pk: int, *, write: bool
    ) -> tuple[Charger, Backoffice]:
        charger = _charger(request, station_id, write=write)
        backoffice = charger.backoffices.select_related("charger").filter(pk=pk).first()
        if backoffice is None:
            raise Http404
        return charger, backoffice

    @extend_schema(responses=BackofficeSerializer)
    def get(self, request: Request, station_id: str, pk: int) -> Response:
        _, backoffice = self._object(request, station_id, pk, write=False)
        return Response(BackofficeSerializer(backoffice).data)

    @extend_schema(request=BackofficeSerializer, responses=BackofficeSerializer)
    def patch(self, request: Request, station_id: str, pk: int) -> Response:
        charger, backoffice = self._object(request, station_id, pk, write=True)
        serializer = BackofficeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        saved = _save(charger, dict(serializer.validated_data), backoffice)
        saved.refresh_from_db()
        return Response(BackofficeSerializer(saved).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, station_id: str, pk: int) -> Response:
        _, backoffice = self._object(request, station_id, pk, write=True)
        services.backoffice_delete(backoffice)
        return Response(status=status.HTTP_204_NO_CONTENT)
