"""GET/PUT /api/v1/chargers/{station_id}/meter-keys/ and DELETE .../meter-keys/{meter_serial}/
(docs/metering.md): the public keys of a charger's calibrated meters, against which their signed
readings (OCMF) are verified. Readers of the charger's organization see them; owners and
managers register them. A key that cannot be read, or does not fit the signing method, is a 400
and changes nothing."""

from __future__ import annotations

from typing import Any

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
from chargers.web.selectors import charger_for_user

from . import ocmf, services
from .models import MeterKey


class MeterKeySerializer(serializers.Serializer):
    meter_serial = serializers.CharField(
        max_length=64, help_text="The meter's serial number as it signs it (OCMF MS)."
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
    created = serializers.DateTimeField(read_only=True)
    updated = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance: MeterKey) -> dict[str, Any]:
        return {
            "meter_serial": instance.meter_serial,
            "public_key": instance.public_key_hex,
            "signing_method": instance.signing_method,
            "created": serializers.DateTimeField().to_representation(instance.created),
            "updated": serializers.DateTimeField().to_representation(instance.updated),
        }


def _charger(request: Request, station_id: str, *, write: bool) -> Charger:
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404
    if write and not can_write(request.user, charger.organization_id):
        raise PermissionDenied("Your role in this organization is read-only.")
    return charger


class MeterKeyListView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = MeterKeySerializer

    @extend_schema(responses=MeterKeySerializer(many=True))
    def get(self, request: Request, station_id: str) -> Response:
        charger = _charger(request, station_id, write=False)
        keys = MeterKey.objects.filter(charger=charger).order_by("meter_serial")
        return Response(MeterKeySerializer(keys, many=True).data)

    @extend_schema(request=MeterKeySerializer, responses={200: MeterKeySerializer})
    def put(self, request: Request, station_id: str) -> Response:
        charger = _charger(request, station_id, write=True)
        serializer = MeterKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            key = services.meter_key_put(
                charger=charger,
                meter_serial=data["meter_serial"],
                public_key=data["public_key"],
                signing_method=data.get("signing_method") or "",
                user=request.user,
            )
        except ValueError as exc:
            raise ValidationError({"public_key": [str(exc)]}) from None
        services.charger_signed_recheck(charger_id=charger.pk)
        return Response(MeterKeySerializer(key).data, status=status.HTTP_200_OK)


class MeterKeyDetailView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = MeterKeySerializer

    @extend_schema(responses={204: None})
    def delete(self, request: Request, station_id: str, meter_serial: str) -> Response:
        charger = _charger(request, station_id, write=True)
        key = MeterKey.objects.filter(charger=charger, meter_serial=meter_serial).first()
        if key is None:
            raise Http404
        services.meter_key_delete(key)
        return Response(status=status.HTTP_204_NO_CONTENT)
