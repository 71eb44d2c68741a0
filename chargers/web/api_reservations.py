"""REST API for a charger's reservations (ReserveNow / CancelReservation, both OCPP versions).

Mixed into chargers.web.api.ChargerViewSet: `GET/POST /api/v1/chargers/{station_id}/reservations/`,
`POST /api/v1/chargers/{station_id}/reservations/{id}/cancel/`. The charger is resolved through
the viewset (tenant-scoped), and writes need the owner or manager role.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from chargers.devices import commands, remote
from chargers.models import Command, ConnectorReservation
from chargers.sessions import reservations


class ReservationSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConnectorReservation
        fields = [
            "id",
            "reservation_id",
            "connector_id",
            "id_tag",
            "group_id_tag",
            "expires_at",
            "status",
            "charger_answer",
            "session",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ReserveSerializer(serializers.Serializer):
    connector_id = serializers.IntegerField(
        min_value=0, help_text="0: any connector of the charger."
    )
    id_tag = serializers.CharField(
        max_length=20, help_text="The card (UID) the connector is held for."
    )
    group_id_tag = serializers.CharField(
        max_length=20, required=False, allow_blank=True, default=""
    )
    expires_at = serializers.DateTimeField()


def command_failure(exc: Exception) -> Response:
    """The API's answer when a command could not be sent or answered."""
    if isinstance(exc, commands.InvalidCommand):
        return Response(
            {"status": "invalid", "error": exc.error.code, "detail": exc.error.description},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, commands.ChargerOffline):
        return Response(
            {"status": "offline", "detail": "The charger is not connected."},
            status=status.HTTP_409_CONFLICT,
        )
    assert isinstance(exc, commands.CommandTimeout)
    return Response(
        {"status": "timeout", "detail": exc.command.error}, status=status.HTTP_504_GATEWAY_TIMEOUT
    )


def command_answer(command: Command, **extra: Any) -> Response:
    if command.status == Command.Status.ERROR:
        return Response(
            {"status": "error", "response": command.response, **extra},
            status=status.HTTP_502_BAD_GATEWAY,
        )
    return Response(
        {"status": command.result_status or "answered", "response": command.response, **extra}
    )


class ReservationsApiMixin:
    """Reservation endpoints of ChargerViewSet."""

    get_object: Any
    require_edit: Any
    organization_id_of: Any

    @extend_schema(request=ReserveSerializer, responses={200: ReservationSerializer(many=True)})
    @action(detail=True, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def reservations(self, request: Request, station_id: str | None = None) -> Response:
        """GET: the charger's reservations, newest first. POST: reserve a connector for a card
        until `expires_at` (sends ReserveNow; active once the charger answers Accepted)."""
        charger = self.get_object()
        if request.method == "GET":
            rows = reservations.reservations_for(charger)[:100]
            return Response(ReservationSerializer(rows, many=True).data)
        self.require_edit(self.organization_id_of(charger))
        form = ReserveSerializer(data=request.data if isinstance(request.data, dict) else {})
        form.is_valid(raise_exception=True)
        try:
            command = remote.reserve_sync(
                charger, source="api", user_id=request.user.pk, **form.validated_data
            )
        except reservations.ReservationRefused as exc:
            return Response(
                {"status": "invalid", "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST
            )
        except (commands.InvalidCommand, commands.ChargerOffline, commands.CommandTimeout) as exc:
            return command_failure(exc)
        reservation = (
            reservations.reservations_for(charger)
            .filter(reservation_id=_sent_reservation_id(command))
            .first()
        )
        return command_answer(
            command, reservation=ReservationSerializer(reservation).data if reservation else None
        )

    @extend_schema(request=None, responses={200: {"type": "object"}})
    @action(
        detail=True,
        methods=["post"],
        url_path=r"reservations/(?P<reservation_pk>[0-9]+)/cancel",
        filter_backends=[],
    )
    def reservation_cancel(
        self, request: Request, station_id: str | None = None, reservation_pk: str | None = None
    ) -> Response:
        """Cancel one of the charger's reservations (sends CancelReservation)."""
        charger = self.get_object()
        self.require_edit(self.organization_id_of(charger))
        reservation = (
            reservations.reservations_for(charger).filter(pk=int(reservation_pk or 0)).first()
        )
        if reservation is None:
            return Response({"detail": "No such reservation."}, status=status.HTTP_404_NOT_FOUND)
        try:
            command = remote.cancel_sync(
                charger, reservation, source="api", user_id=request.user.pk
            )
        except (commands.InvalidCommand, commands.ChargerOffline, commands.CommandTimeout) as exc:
            return command_failure(exc)
        return command_answer(command)


def _sent_reservation_id(command: Command) -> int:
    payload = command.payload or {}
    return int(payload.get("reservationId", payload.get("id", 0)))
