"""GET/PUT /api/v1/chargers/{station_id}/meter-keys/ and DELETE .../meter-keys/{meter_serial}/
(docs/metering.md): the public keys of a charger's calibrated meters, against which their signed
readings (OCMF) are verified. A meter whose OCMF names no serial is named by its connector (1.6,
`connector_id`) or EVSE (2.0.1, `evse_id`): DELETE .../meter-keys/connector/{n}/ or
.../meter-keys/evse/{n}/. POST .../meter-keys/read-from-charger/ asks the charger for its meters'
keys (1.6 `MeterPublicKey[ConnectorID]`, 2.0.1 FiscalMetering.PublicKey) and keeps them
unconfirmed; POST .../{meter_serial | connector/{n} | evse/{n}}/confirm/ is a person confirming
that such a key matches the one printed on the meter (only then does it verify readings).
Readers of the charger's organization see them; owners and managers register and confirm them.
A key that cannot be read, or does not fit the signing method, is a 400 and changes nothing.
A serial may hold "/" (issue 47 item 6): the URL takes it as a path, and DELETE
.../meter-keys/?meter_serial= takes any serial."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.tenancy import can_write
from chargers.models import Charger
from chargers.web.selectors import charger_for_user

from . import ocmf, services
from .models import MeterKey


class MeterKeySerializer(serializers.Serializer):
    meter_serial = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The meter's serial number as it signs it (OCMF MS). Leave out for a meter "
        "whose OCMF names no serial, and give connector_id or evse_id instead.",
    )
    connector_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="OCPP 1.6: the connector whose meter this is (a meter naming no serial).",
    )
    evse_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="OCPP 2.0.1: the EVSE whose meter this is (a meter naming no serial).",
    )
    public_key = serializers.CharField(
        max_length=5000,
        help_text="The public key printed on the meter: hex DER, PEM, Base64 DER or the OCA "
        "form oca:base16:asn1:<hex>. Returned as hex DER.",
    )
    signing_method = serializers.ChoiceField(
        choices=sorted(ocmf.CURVES),
        required=False,
        allow_blank=True,
        help_text="OCMF SA; taken from the key's curve when left out.",
    )
    source = serializers.CharField(
        read_only=True,
        help_text="person (registered by a person) or charger (read from its configuration).",
    )
    confirmed = serializers.BooleanField(
        read_only=True,
        help_text="A person confirmed the key matches the one printed on the meter; an "
        "unconfirmed key verifies no reading.",
    )
    confirmed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created = serializers.DateTimeField(read_only=True)
    updated = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance: MeterKey) -> dict[str, Any]:
        when = serializers.DateTimeField()
        return {
            "meter_serial": instance.meter_serial,
            "connector_id": instance.connector_id,
            "evse_id": instance.evse_id,
            "public_key": instance.public_key_hex,
            "signing_method": instance.signing_method,
            "source": instance.source,
            "confirmed": instance.confirmed,
            "confirmed_at": when.to_representation(instance.confirmed_at)
            if instance.confirmed_at
            else None,
            "created": when.to_representation(instance.created),
            "updated": when.to_representation(instance.updated),
        }


class MeterKeyConfirmSerializer(serializers.Serializer):
    public_key = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        help_text="Optional: the key printed on the meter; it must be the one the charger "
        "reported, or nothing is confirmed (400).",
    )


def _charger(request: Request, station_id: str, *, write: bool) -> Charger:
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404
    if write and not can_write(request.user, charger.organization_id):
        raise PermissionDenied("Your role in this organization is read-only.")
    return charger


def _key(
    charger: Charger, meter_serial: str = "", by: str = "", port: int | None = None
) -> MeterKey:
    if by in ("connector", "evse") and port is not None:
        # The URL names only connector/{n} or evse/{n} this way (a serial may hold "/" too).
        lookup: dict[str, Any] = {"meter_serial": "", f"{by}_id": int(port)}
    else:
        lookup = {"meter_serial": meter_serial}
    key = MeterKey.objects.filter(charger=charger, **lookup).first()
    if key is None:
        raise Http404
    return key


class MeterKeyListView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = MeterKeySerializer

    @extend_schema(responses=MeterKeySerializer(many=True))
    def get(self, request: Request, station_id: str) -> Response:
        charger = _charger(request, station_id, write=False)
        keys = MeterKey.objects.filter(charger=charger).order_by(
            "meter_serial", "connector_id", "evse_id"
        )
        return Response(MeterKeySerializer(keys, many=True).data)

    @extend_schema(request=MeterKeySerializer, responses={200: MeterKeySerializer})
    def put(self, request: Request, station_id: str) -> Response:
        charger = _charger(request, station_id, write=True)
        serializer = MeterKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        identity = services.MeterIdentity(
            data.get("meter_serial") or "", data.get("connector_id"), data.get("evse_id")
        )
        try:
            services.meter_identity_check(charger, identity)
        except ValueError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from None
        try:
            key = services.meter_key_put(
                charger=charger,
                meter_serial=identity.meter_serial,
                connector_id=identity.connector_id,
                evse_id=identity.evse_id,
                public_key=data["public_key"],
                signing_method=data.get("signing_method") or "",
                user=request.user,
            )
        except ValueError as exc:
            raise ValidationError({"public_key": [str(exc)]}) from None
        services.charger_signed_recheck(charger_id=charger.pk)
        return Response(MeterKeySerializer(key).data, status=status.HTTP_200_OK)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "meter_serial",
                str,
                OpenApiParameter.QUERY,
                required=True,
                description="The serial of the key to delete (any characters, URL-encoded).",
            )
        ],
        responses={204: None},
        operation_id="chargers_meter_keys_destroy_by_serial",
    )
    def delete(self, request: Request, station_id: str) -> Response:
        serial = request.query_params.get("meter_serial", "")
        if not serial:
            raise ValidationError({"meter_serial": ["Give the serial of the key to delete."]})
        return _delete(request, station_id, serial)


def _delete(request: Request, station_id: str, meter_serial: str) -> Response:
    charger = _charger(request, station_id, write=True)
    services.meter_key_delete(_key(charger, meter_serial))
    return Response(status=status.HTTP_204_NO_CONTENT)


class MeterKeyDetailView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = MeterKeySerializer

    @extend_schema(responses={204: None})
    def delete(
        self,
        request: Request,
        station_id: str,
        meter_serial: str = "",
        by: str = "",
        port: int | None = None,
    ) -> Response:
        charger = _charger(request, station_id, write=True)
        services.meter_key_delete(_key(charger, meter_serial, by, port))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeterKeyConfirmView(APIView):
    """A person confirms that a key read from the charger matches the key printed on the meter."""

    permission_classes = [IsAuthenticated]
    serializer_class = MeterKeyConfirmSerializer

    @extend_schema(request=MeterKeyConfirmSerializer, responses={200: MeterKeySerializer})
    def post(
        self,
        request: Request,
        station_id: str,
        meter_serial: str = "",
        by: str = "",
        port: int | None = None,
    ) -> Response:
        charger = _charger(request, station_id, write=True)
        key = _key(charger, meter_serial, by, port)
        serializer = MeterKeyConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            key = services.meter_key_confirm(
                key=key,
                user=request.user,
                printed_key=serializer.validated_data.get("public_key") or "",
            )
        except ValueError as exc:
            raise ValidationError({"public_key": [str(exc)]}) from None
        return Response(MeterKeySerializer(key).data, status=status.HTTP_200_OK)


# The meter named by connector or EVSE (the URL's `by` and `port`, port a string of digits that
# _key reads as a number): the same views, with operation ids of their own in the schema.
@extend_schema_view(
    delete=extend_schema(responses={204: None}, operation_id="chargers_meter_keys_port_destroy")
)
class MeterKeyPortDetailView(MeterKeyDetailView):
    """DELETE .../meter-keys/connector/{n}/ or .../evse/{n}/: a key of a meter with no serial."""


@extend_schema_view(
    post=extend_schema(
        request=MeterKeyConfirmSerializer,
        responses={200: MeterKeySerializer},
        operation_id="chargers_meter_keys_port_confirm_create",
    )
)
class MeterKeyPortConfirmView(MeterKeyConfirmView):
    """POST .../meter-keys/connector/{n}/confirm/ or .../evse/{n}/confirm/."""


class MeterKeysReadFromChargerView(APIView):
    """Ask the charger for its meters' public keys; they are kept unconfirmed."""

    permission_classes = [IsAuthenticated]
    serializer_class = MeterKeySerializer

    @extend_schema(request=None, responses={200: MeterKeySerializer(many=True)})
    def post(self, request: Request, station_id: str) -> Response:
        charger = _charger(request, station_id, write=True)
        try:
            keys = services.meter_keys_read_from_charger(charger=charger, user_id=request.user.pk)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(MeterKeySerializer(keys, many=True).data)
