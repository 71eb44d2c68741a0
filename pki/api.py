"""The REST API of Plug & Charge trust (docs/pki.md), per organization:

GET/POST /api/v1/organizations/{id}/root-certificates/: the roots the organization installed
(V2G, MO, CSMS, manufacturer); POST adds one from its PEM. DELETE .../root-certificates/{pk}/
removes one. GET/PUT /api/v1/organizations/{id}/pki-settings/: the PKI provider and who signs
V2G certificates. Readers of the organization see them; owners and managers change them
(backoffice.tenancy.require_role); another organization's id is a 404, a bad certificate or a
provider URL the outbound guard refuses a 400 that changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice import outbound
from backoffice.tenancy import require_role

from . import services
from .models import CertificateUse, PkiSettings, RootCertificate


class RootCertificateSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    use = serializers.ChoiceField(
        choices=CertificateUse.choices,
        help_text="What the root is for (OCPP InstallCertificateUseEnumType).",
    )
    certificate_pem = serializers.CharField(
        max_length=10000, help_text="The self-signed CA certificate, PEM encoded."
    )
    fingerprint_sha256 = serializers.CharField(read_only=True)
    subject = serializers.CharField(read_only=True)
    not_after = serializers.DateTimeField(read_only=True)
    added_at = serializers.DateTimeField(read_only=True)


class PkiSettingsSerializer(serializers.Serializer):
    provider_url = serializers.CharField(
        max_length=200,
        allow_blank=True,
        help_text="HTTPS base URL of the PKI provider (docs/pki.md); empty: none.",
    )
    provider_token = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Bearer token for the provider; left out keeps the stored one. Never returned.",
    )
    provider_token_set = serializers.SerializerMethodField()
    v2g_signer = serializers.ChoiceField(
        choices=PkiSettings.V2gSigner.choices,
        allow_blank=True,
        help_text="Who signs the chargers' V2G certificates: '' nobody, local, provider.",
    )

    def get_provider_token_set(self, obj: Any) -> bool:
        return bool(getattr(obj, "provider_token", ""))


class RootCertificateListView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = RootCertificateSerializer

    @extend_schema(responses=RootCertificateSerializer(many=True))
    def get(self, request: Request, organization_id: int) -> Response:
        require_role(request.user, organization_id)
        rows = RootCertificate.objects.filter(organization_id=organization_id)
        return Response(RootCertificateSerializer(rows, many=True).data)

    @extend_schema(request=RootCertificateSerializer, responses={201: RootCertificateSerializer})
    def post(self, request: Request, organization_id: int) -> Response:
        require_role(request.user, organization_id, edit=True)
        serializer = RootCertificateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            root = services.root_add(
                organization_id=organization_id,
                use=serializer.validated_data["use"],
                certificate_pem=serializer.validated_data["certificate_pem"],
            )
        except services.CertificateRefused as exc:
            raise ValidationError({"certificate_pem": [str(exc)]}) from None
        return Response(RootCertificateSerializer(root).data, status=status.HTTP_201_CREATED)


class RootCertificateDetailView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = RootCertificateSerializer

    def _root(self, organization_id: int, pk: int) -> RootCertificate:
        root = RootCertificate.objects.filter(organization_id=organization_id, pk=pk).first()
        if root is None:
            raise Http404
        return root

    @extend_schema(responses=RootCertificateSerializer)
    def get(self, request: Request, organization_id: int, pk: int) -> Response:
        require_role(request.user, organization_id)
        return Response(RootCertificateSerializer(self._root(organization_id, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, organization_id: int, pk: int) -> Response:
        require_role(request.user, organization_id, edit=True)
        self._root(organization_id, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class PkiSettingsView(APIView):
    permission_classes = [IsAuthenticated]
    serializer_class = PkiSettingsSerializer

    @extend_schema(responses=PkiSettingsSerializer)
    def get(self, request: Request, organization_id: int) -> Response:
        require_role(request.user, organization_id)
        row = PkiSettings.objects.filter(organization_id=organization_id).first()
        return Response(PkiSettingsSerializer(row or PkiSettings()).data)

    @extend_schema(request=PkiSettingsSerializer, responses=PkiSettingsSerializer)
    def put(self, request: Request, organization_id: int) -> Response:
        require_role(request.user, organization_id, edit=True)
        serializer = PkiSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            row = services.settings_save(
                organization_id=organization_id,
                provider_url=data["provider_url"].strip(),
                provider_token=data.get("provider_token"),
                v2g_signer=data["v2g_signer"],
            )
        except outbound.OutboundBlocked as exc:
            raise ValidationError({"provider_url": [exc.say("the PKI provider")]}) from None
        return Response(PkiSettingsSerializer(row).data)
