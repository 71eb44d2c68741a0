"""REST API for tokens, token groups, MSPs and recorded authorization decisions."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError

from backoffice.api import PropertySerializer, PropertyViewSet, TenantViewSetMixin
from backoffice.tenancy import TenantSerializerMixin, readable, readable_organization_ids
from stays.models import Reservation

from .decisions import NOT_AN_EMAID, emaid_issuer
from .forms import GROUP_EXISTS
from .models import AuthorizationDecision, MobilityServiceProvider, Token, TokenGroup, normalize_uid
from .msp_client import MSP_URL_MESSAGE, BlockedMspUrl, check_msp_url
from .services import token_group_touch


class MspSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization",)
    live_validation_token = serializers.CharField(write_only=True, required=False, allow_blank=True)

    class Meta:
        model = MobilityServiceProvider
        fields = [
            "id",
            "organization",
            "name",
            "country_code",
            "party_id",
            "blocked",
            "live_validation_url",
            "live_validation_token",
            "via_hub",
            "timeout_s",
            "on_timeout",
            "tokens_synced_at",
        ]
        read_only_fields = ["tokens_synced_at", "via_hub"]

    def update(self, instance: MobilityServiceProvider, validated_data: dict) -> Any:
        if validated_data.get("live_validation_url", instance.live_validation_url) != (
            instance.live_validation_url
        ):
            validated_data["via_hub"] = False  # an endpoint given by hand is the provider's own
        return super().update(instance, validated_data)

    def validate_live_validation_url(self, value: str) -> str:
        if value:
            try:
                check_msp_url(value)
            except BlockedMspUrl:
                raise ValidationError(MSP_URL_MESSAGE) from None
        return value


class MspViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    serializer_class = MspSerializer
    filterset_fields = ["organization", "blocked"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[MobilityServiceProvider]:
        return readable(MobilityServiceProvider.objects.all(), self.request.user).order_by("pk")

    def perform_create(self, serializer: MspSerializer) -> None:
        self.require_edit(serializer.validated_data["organization"].pk)
        serializer.save()


class TokenSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization", "msp")
    groups = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=TokenGroup.objects.all()
    )
    allowed_station_ids = serializers.ListField(
        child=serializers.CharField(max_length=48), required=False
    )

    class Meta:
        model = Token
        fields = [
            "id",
            "uid",
            "type",
            "valid",
            "expires_at",
            "blocked",
            "organization",
            "msp",
            "groups",
            "allowed_station_ids",
            "parent_id_tag",
            "single_session",
            "label",
            "created_at",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        organization = attrs.get("organization", getattr(self.instance, "organization", None))
        msp = attrs.get("msp", getattr(self.instance, "msp", None))
        if organization is None and msp is None:
            raise ValidationError({"organization": "A token belongs to an organization or an MSP."})
        if organization is not None:
            owner_org = organization.pk
        else:
            assert msp is not None  # refused above when both are missing
            owner_org = msp.organization_id
        for group in attrs.get("groups", []):
            if group.organization_id != owner_org:
                raise ValidationError({"groups": "Groups must belong to the token's organization."})
        uid = attrs.get("uid", getattr(self.instance, "uid", ""))
        kind = attrs.get("type", getattr(self.instance, "type", ""))
        if kind == Token.Type.EMAID and emaid_issuer(uid) is None:
            raise ValidationError({"uid": NOT_AN_EMAID})
        clash = Token.objects.filter(uid_normalized=normalize_uid(uid))
        clash = clash.filter(organization=organization) if organization else clash.filter(msp=msp)
        if self.instance:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError({"uid": "This UID is already registered."})
        return attrs


class TokenFilter(django_filters.FilterSet):
    uid = django_filters.CharFilter(method="filter_uid")

    class Meta:
        model = Token
        fields = ["organization", "msp", "valid", "blocked", "type", "uid"]

    def filter_uid(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(uid_normalized__contains=normalize_uid(value))


class TokenViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    serializer_class = TokenSerializer
    filterset_class = TokenFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Token]:
        ids = readable_organization_ids(self.request.user)
        queryset = Token.objects.prefetch_related("groups").select_related("msp").order_by("pk")
        if ids is not None:
            queryset = queryset.filter(Q(organization_id__in=ids) | Q(msp__organization_id__in=ids))
        return queryset

    def organization_id_of(self, obj: Token) -> int:
        if obj.organization_id:
            return obj.organization_id
        assert obj.msp is not None, "a token belongs to an organization or an MSP"
        return obj.msp.organization_id

    def _check_owner(self, serializer: TokenSerializer) -> None:
        organization = serializer.validated_data.get("organization")
        msp = serializer.validated_data.get("msp")
        self.require_edit(organization.pk if organization else msp.organization_id)

    def perform_create(self, serializer: TokenSerializer) -> None:
        self._check_owner(serializer)
        try:
            with transaction.atomic():
                token = serializer.save()
                token_group_touch(group_ids=[g.pk for g in token.groups.all()])
        except IntegrityError:
            # The same card posted twice at once (a client's retry): the other request stored it.
            raise ValidationError({"uid": "This UID is already registered."}) from None

    @transaction.atomic
    def perform_update(self, serializer: TokenSerializer) -> None:
        # The owner (organization or MSP) never changes, and the object check required edit rights.
        before = set(serializer.instance.groups.values_list("pk", flat=True))
        token = serializer.save()
        token_group_touch(group_ids=sorted(before | set(token.groups.values_list("pk", flat=True))))


class TokenGroupSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization",)
    tokens = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=Token.objects.all()
    )

    class Meta:
        model = TokenGroup
        fields = [
            "id",
            "organization",
            "name",
            "tokens",
            "restricted_properties",
            "version",
            "created_at",
        ]
        read_only_fields = ["version"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        organization = attrs.get("organization", getattr(self.instance, "organization", None))
        # Required on create, never null: the body's or the group's own.
        assert organization is not None, "a token group belongs to an organization"
        for token in attrs.get("tokens", []):
            if token.organization_id != organization.pk and (
                not token.msp_id or token.msp.organization_id != organization.pk
            ):
                raise ValidationError(
                    {"tokens": "Tokens must belong to the group's organization or its MSPs."}
                )
        for prop in attrs.get("restricted_properties", []):
            if prop.organization_id != organization.pk:
                raise ValidationError(
                    {"restricted_properties": "Properties must belong to the same organization."}
                )
        name = str(attrs.get("name") or getattr(self.instance, "name", "")).strip()
        same = TokenGroup.objects.filter(organization=organization, name__iexact=name)
        if self.instance is not None:
            same = same.exclude(pk=self.instance.pk)
        if same.exists():  # "staff" beside "Staff": one group to whoever picks it
            raise ValidationError({"name": GROUP_EXISTS})
        return attrs


class TokenGroupViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    serializer_class = TokenGroupSerializer
    filterset_fields = ["organization"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[TokenGroup]:
        return readable(
            TokenGroup.objects.prefetch_related("tokens", "restricted_properties"),
            self.request.user,
        ).order_by("pk")

    def perform_create(self, serializer: TokenGroupSerializer) -> None:
        self.require_edit(serializer.validated_data["organization"].pk)
        try:
            with transaction.atomic():
                group = serializer.save()
                token_group_touch(group_ids=[group.pk])
        except IntegrityError:  # the same group posted twice at once: the other stored it
            raise ValidationError({"name": [GROUP_EXISTS]}) from None

    def perform_update(self, serializer: TokenGroupSerializer) -> None:
        try:
            with transaction.atomic():
                group = serializer.save()
                token_group_touch(group_ids=[group.pk])
        except IntegrityError:  # renamed at once to the name another group just took
            raise ValidationError({"name": [GROUP_EXISTS]}) from None


class DecisionReservationSerializer(serializers.ModelSerializer):
    """The stay whose access code was used: it allowed or refused the start."""

    class Meta:
        model = Reservation
        fields = ["id", "external_id"]


class DecisionSerializer(serializers.ModelSerializer):
    reason = serializers.CharField()
    reservation = DecisionReservationSerializer(
        read_only=True,
        allow_null=True,
        help_text="The stay (reservation) that allowed or refused the start; null for others.",
    )

    class Meta:
        model = AuthorizationDecision
        fields = [
            "id",
            "uid",
            "station_id",
            "connector_id",
            "context",
            "status",
            "reason",
            "step",
            "message",
            "msp_latency_ms",
            "ocpp_unique_id",
            "leader_name",
            "leader_status",
            "leader_answered",
            "reservation",
            "created_at",
        ]


class DecisionFilter(django_filters.FilterSet):
    uid = django_filters.CharFilter(method="filter_uid")

    class Meta:
        model = AuthorizationDecision
        fields = ["station_id", "status", "reason", "context", "uid", "reservation"]

    def filter_uid(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(uid_normalized=normalize_uid(value))


class AuthorizationDecisionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = DecisionSerializer
    filterset_class = DecisionFilter

    def get_queryset(self) -> QuerySet[AuthorizationDecision]:
        return readable(
            AuthorizationDecision.objects.select_related("reservation"), self.request.user
        ).order_by("-created_at", "-id")


class PropertyWithGroupsSerializer(PropertySerializer):
    token_groups = serializers.PrimaryKeyRelatedField(
        source="restricted_token_groups",
        many=True,
        required=False,
        queryset=TokenGroup.objects.all(),
    )

    class Meta(PropertySerializer.Meta):
        fields = [*PropertySerializer.Meta.fields, "token_groups"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        organization = attrs.get("organization") or getattr(self.instance, "organization", None)
        for group in attrs.get("restricted_token_groups", []):
            if organization is None or group.organization_id != organization.pk:
                raise ValidationError(
                    {"token_groups": "Token groups must belong to the same organization."}
                )
        return attrs


class PropertyWithGroupsViewSet(PropertyViewSet):
    serializer_class = PropertyWithGroupsSerializer

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().prefetch_related("restricted_token_groups")

    @transaction.atomic
    def perform_update(self, serializer: PropertyWithGroupsSerializer) -> None:
        super().perform_update(serializer)
        token_group_touch(
            group_ids=[g.pk for g in serializer.instance.restricted_token_groups.all()]
        )
