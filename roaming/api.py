"""REST API for roaming: OCPI partners (/api/v1/roaming/partners/) and a location's roaming data
(`roaming_data` of /api/v1/properties/). Transport only: validate, one service call, render.

Tenant isolation as everywhere in the API (backoffice.api.TenantViewSetMixin): another
organization's partner or property is a 404, and writes need owner or manager.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from authorization.api import PropertyWithGroupsSerializer, PropertyWithGroupsViewSet
from backoffice.api import TenantViewSetMixin, as_drf_error
from backoffice.models import Organization, Property
from backoffice.tenancy import TenantSerializerMixin, readable

from . import location_data, selectors, services
from .client import BlockedPartnerUrl, check_partner_url
from .models import LocationProfile, Partner
from .views import our_versions_url

_CLOCK = "^([0-1][0-9]|2[0-3]):[0-5][0-9]$"
_PERIODS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "period_begin": {"type": "string", "format": "date-time"},
            "period_end": {"type": "string", "format": "date-time"},
        },
        "required": ["period_begin", "period_end"],
        "additionalProperties": False,
    },
}
HOURS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'An OCPI 2.2.1 Hours object (mod_locations "Hours"). regular_hours only, and '
    "at least one, when twentyfourseven is false; period_end later than period_begin.",
    "properties": {
        "twentyfourseven": {"type": "boolean"},
        "regular_hours": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "weekday": {"type": "integer", "minimum": 1, "maximum": 7},
                    "period_begin": {"type": "string", "pattern": _CLOCK},
                    "period_end": {"type": "string", "pattern": _CLOCK},
                },
                "required": ["weekday", "period_begin", "period_end"],
                "additionalProperties": False,
            },
        },
        "exceptional_openings": _PERIODS,
        "exceptional_closings": _PERIODS,
    },
    "required": ["twentyfourseven"],
    "additionalProperties": False,
}


@extend_schema_field(HOURS_SCHEMA)
class OpeningHoursField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        try:
            return location_data.check_hours(data)
        except location_data.InvalidLocationData as exc:
            raise ValidationError(exc.message) from None


def _checked(check: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return check(*args, **kwargs)
    except location_data.InvalidLocationData as exc:
        raise ValidationError(exc.message) from None


class CoordinateField(serializers.CharField):
    """A latitude or longitude as OCPI sends it: a string, never a JSON number."""

    def to_internal_value(self, data: Any) -> Any:
        return _checked(location_data.parse_coordinate, data, field=self.field_name)


class RoamingDataSerializer(serializers.Serializer):
    """What OCPI partners (and AFIR) are told about the location; null: not published."""

    city = serializers.CharField(max_length=location_data.CITY_MAX)
    postal_code = serializers.CharField(
        max_length=location_data.POSTAL_CODE_MAX, required=False, allow_blank=True
    )
    country = serializers.CharField(
        min_length=3, max_length=3, help_text="ISO 3166-1 alpha-3, e.g. NLD."
    )
    latitude = CoordinateField(
        help_text="WGS 84 decimal degrees as OCPI sends them: a string with 5 to 7 decimals, "
        'e.g. "52.0907374".'
    )
    longitude = CoordinateField(help_text='As latitude, e.g. "5.1214201".')
    opening_hours = OpeningHoursField(
        required=False, help_text='OCPI Hours; default {"twentyfourseven": true}.'
    )
    operator_name = serializers.CharField(
        max_length=location_data.OPERATOR_NAME_MAX,
        required=False,
        allow_blank=True,
        help_text="The operator partners show; empty: the organization's name.",
    )

    def validate_country(self, value: str) -> str:
        return str(_checked(location_data.check_country, value))

    def to_representation(self, instance: LocationProfile) -> dict[str, Any]:
        return {
            "city": instance.city,
            "postal_code": instance.postal_code,
            "country": instance.country,
            "latitude": location_data.format_coordinate(instance.latitude),
            "longitude": location_data.format_coordinate(instance.longitude),
            "opening_hours": selectors.opening_hours_of(instance),
            "operator_name": instance.operator_name,
        }


_REQUIRED = ("city", "country", "latitude", "longitude")


def _model_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Return the LocationProfile fields of validated roaming data."""
    fields = {k: v for k, v in data.items() if k != "opening_hours"}
    hours = data.get("opening_hours")
    if hours is not None:
        fields["open_24_7"] = hours["twentyfourseven"]
        fields["regular_hours"] = hours.get("regular_hours", [])
        fields["exceptional_openings"] = hours.get("exceptional_openings", [])
        fields["exceptional_closings"] = hours.get("exceptional_closings", [])
    return fields


class PropertyRoamingSerializer(PropertyWithGroupsSerializer):
    roaming_data = RoamingDataSerializer(
        source="ocpi_profile",
        required=False,
        allow_null=True,
        help_text="The location's roaming data (OCPI); null: the location is not published.",
    )

    class Meta(PropertyWithGroupsSerializer.Meta):
        fields = [*PropertyWithGroupsSerializer.Meta.fields, "roaming_data"]

    def _save_roaming(self, prop: Property, data: Any) -> None:
        if data is not None:
            existing = LocationProfile.objects.filter(property=prop).exists()
            missing = [name for name in _REQUIRED if name not in data]
            if missing and not existing:
                raise ValidationError(
                    {"roaming_data": {name: ["This field is required."] for name in missing}}
                )
            data = _model_fields(data)
        try:
            profile = services.location_data_save(property_id=prop.pk, data=data)
        except DjangoValidationError as exc:
            raise ValidationError({"roaming_data": as_drf_error(exc).detail}) from None
        if profile is not None:
            prop.ocpi_profile = profile
        else:
            prop._state.fields_cache.pop("ocpi_profile", None)

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Property:
        given = "ocpi_profile" in validated_data
        roaming = validated_data.pop("ocpi_profile", None)
        prop = super().create(validated_data)
        if given and roaming is not None:
            self._save_roaming(prop, roaming)
        return prop

    @transaction.atomic
    def update(self, instance: Property, validated_data: dict[str, Any]) -> Property:
        given = "ocpi_profile" in validated_data
        roaming = validated_data.pop("ocpi_profile", None)
        prop = super().update(instance, validated_data)
        if given:
            self._save_roaming(prop, roaming)
        return prop


class PropertyRoamingViewSet(PropertyWithGroupsViewSet):
    """Locations (properties) with their token groups and roaming data."""

    serializer_class = PropertyRoamingSerializer

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("ocpi_profile")


# -- OCPI partners --------------------------------------------------------------------------------


class PartnerCountsSerializer(serializers.Serializer):
    tokens = serializers.IntegerField()
    sessions = serializers.IntegerField()
    cdrs = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Pushes waiting to be accepted.")


class PartnerSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization",)
    counts = serializers.SerializerMethodField()
    # Empty ("") for a partner we invited until it registers: a string, not a URI, in the schema.
    versions_url = serializers.CharField(
        read_only=True, help_text="The partner's versions URL; empty until it has registered."
    )

    class Meta:
        model = Partner
        fields = [
            "id",
            "organization",
            "name",
            "role",
            "country_code",
            "party_id",
            "state",
            "versions_url",
            "version",
            "endpoints",
            "business_details",
            "registered_at",
            "last_push_at",
            "last_pull_at",
            "last_error",
            "last_error_at",
            "last_error_ocpi_status",
            "counts",
            "created_at",
        ]
        read_only_fields = [name for name in fields if name != "name"]

    @extend_schema_field(PartnerCountsSerializer)
    def get_counts(self, partner: Partner) -> dict[str, int]:
        return selectors.partner_counts(partner)


class PartnerCreateSerializer(TenantSerializerMixin, serializers.Serializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())
    name = serializers.CharField(max_length=200)
    versions_url = serializers.URLField(
        max_length=500,
        required=False,
        help_text="The partner's versions URL: with token_a, we register with the partner now.",
    )
    token_a = serializers.CharField(
        max_length=64,
        required=False,
        write_only=True,
        help_text="The token A the partner gave us (with versions_url). Leave both out to "
        "issue a token A for the partner to register with us.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("versions_url" in attrs) != ("token_a" in attrs):
            field = "token_a" if "versions_url" in attrs else "versions_url"
            raise ValidationError(
                {field: ["Give the partner's versions_url and token_a together, or neither."]}
            )
        if "versions_url" in attrs:
            try:
                check_partner_url(attrs["versions_url"])
            except BlockedPartnerUrl as exc:
                raise ValidationError({"versions_url": [str(exc)]}) from None
        return attrs


class PartnerRegistrationSerializer(PartnerSerializer):
    """A new partner, with what to hand it when it is to register with us (context)."""

    token_a = serializers.SerializerMethodField(
        help_text="Issued for the partner to register with us: shown this once (we keep only "
        "its hash). Null when we registered with the partner."
    )
    our_versions_url = serializers.SerializerMethodField(
        help_text="Our OCPI versions URL, to hand over with token_a."
    )

    class Meta(PartnerSerializer.Meta):
        fields = [*PartnerSerializer.Meta.fields, "token_a", "our_versions_url"]
        read_only_fields = [*PartnerSerializer.Meta.read_only_fields]

    @extend_schema_field({"type": "string", "nullable": True})
    def get_token_a(self, partner: Partner) -> str | None:
        return self.context.get("token_a")

    @extend_schema_field({"type": "string", "format": "uri"})
    def get_our_versions_url(self, partner: Partner) -> str:
        return str(self.context["our_versions_url"])


class PartnerViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """OCPI partners (eMSPs and hubs) of the user's organizations; only `name` changes."""

    serializer_class = PartnerSerializer
    filterset_fields = ["organization", "state", "role"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return readable(
            Partner.objects.select_related("organization", "msp"), self.request.user
        ).order_by("pk")

    def get_serializer_class(self) -> Any:
        return PartnerCreateSerializer if self.action == "create" else PartnerSerializer

    @extend_schema(
        request=PartnerCreateSerializer,
        responses={201: PartnerRegistrationSerializer},
        description="With the partner's versions_url and token_a: register with the partner "
        "now (the OCPI credentials handshake; 400 when it refuses or cannot be reached). "
        "Without them: issue a token A for the partner to register with us at our_versions_url.",
    )
    def create(self, request: Request) -> Response:
        serializer = PartnerCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        organization = data["organization"]
        self.require_edit(organization.pk)
        ours = our_versions_url(request)
        token_a = None
        if "versions_url" in data:
            try:
                partner = services.partner_connect(
                    organization=organization,
                    name=data["name"],
                    versions_url=data["versions_url"],
                    token_a=data["token_a"],
                    our_versions_url=ours,
                )
            except services.RegistrationError as exc:
                message = (
                    f"The partner refused or could not be reached (OCPI {exc.code}): {exc.message}"
                )
                raise ValidationError({"versions_url": [message]}) from None
        else:
            partner, token_a = services.partner_invite(organization=organization, name=data["name"])
        context = {"request": request, "token_a": token_a, "our_versions_url": ours}
        body = PartnerRegistrationSerializer(partner, context=context).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={204: None},
        description="Unregister: a credentials DELETE to the partner when registered, and both "
        "sides' tokens revoked. The partner stays listed as unregistered (its log and CDRs "
        "are kept).",
    )
    def destroy(self, request: Request, pk: Any = None) -> Response:
        partner = self.get_object()  # 404 for another organization's; 403 for read-only roles
        services.partner_disconnect(partner=partner)
        return Response(status=status.HTTP_204_NO_CONTENT)
