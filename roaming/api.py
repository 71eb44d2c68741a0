"""REST API for roaming: OCPI partners (/api/v1/roaming/partners/), the payment terminals of
PTP partners and their payments (/api/v1/roaming/terminals/, /terminal-payments/), and a
location's roaming data (`roaming_data` of /api/v1/properties/, with its parking places).
Transport only: validate, one service call, render.

Tenant isolation as everywhere in the API (backoffice.api.TenantViewSetMixin): another
organization's partner or property is a 404, and writes need owner or manager.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authorization.api import PropertyWithGroupsSerializer, PropertyWithGroupsViewSet
from backoffice.api import TenantViewSetMixin, as_drf_error
from backoffice.models import Organization, Property
from backoffice.tenancy import (
    TenantSerializerMixin,
    can_write,
    readable,
    readable_organizations,
)
from billing.money import is_known_currency
from chargers.models import Charger

from . import access_points, emsp, emsp_rules, location_data, payments, plain, selectors, services
from .client import BlockedPartnerUrl, check_partner_url
from .models import (
    AccessPointFeed,
    EmspIdentity,
    LocationProfile,
    ParkingEvse,
    ParkingPlace,
    Partner,
    Terminal,
    TerminalActivation,
    TerminalPayment,
    VehicleType,
)
from .views.cpo import our_versions_url

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


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {
            "is_green_energy": {"type": "boolean"},
            "supplier_name": {"type": "string", "maxLength": 64},
            "energy_product_name": {"type": "string", "maxLength": 64},
        },
        "required": ["is_green_energy"],
        "additionalProperties": False,
    }
)
class EnergyMixField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        return _checked(location_data.check_energy_mix, data)


class CoordinateField(serializers.CharField):
    """A latitude or longitude as OCPI sends it: a string, never a JSON number."""

    def to_internal_value(self, data: Any) -> Any:
        return _checked(location_data.parse_coordinate, data, field=self.field_name)


class ParkingChargerSerializer(serializers.Serializer):
    station_id = serializers.CharField(max_length=100, help_text="A charger of this location.")
    evse_position = serializers.ChoiceField(
        choices=ParkingEvse.Position.choices,
        required=False,
        allow_blank=True,
        help_text="Where the charger is, seen from the parked vehicle.",
    )


class ParkingPlaceSerializer(serializers.Serializer):
    """A parking space chargers at the location serve (OCPI 2.3.0 Parking; AFIR: the spaces,
    the vehicles they take, those for people with disabilities). Sizes in cm, weight in kg."""

    id = serializers.IntegerField(
        required=False, help_text="An existing parking place of this location, to change it."
    )
    physical_reference = serializers.CharField(max_length=12, required=False, allow_blank=True)
    vehicle_types = serializers.ListField(
        child=serializers.ChoiceField(choices=VehicleType.choices), min_length=1, max_length=20
    )
    restricted_to_type = serializers.BooleanField(default=False)
    reservation_required = serializers.BooleanField(default=False)
    max_vehicle_weight = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    max_vehicle_height = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    max_vehicle_length = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    max_vehicle_width = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    parking_space_length = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    parking_space_width = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    dangerous_goods_allowed = serializers.BooleanField(required=False, allow_null=True)
    direction = serializers.ChoiceField(
        choices=ParkingPlace.Direction.choices, required=False, allow_blank=True
    )
    drive_through = serializers.BooleanField(required=False, allow_null=True)
    time_limit = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="Minutes a vehicle may stay."
    )
    roofed = serializers.BooleanField(required=False, allow_null=True)
    lighting = serializers.BooleanField(required=False, allow_null=True)
    refrigeration_outlet = serializers.BooleanField(required=False, allow_null=True)
    standards = serializers.ListField(
        child=serializers.CharField(max_length=36), required=False, help_text="e.g. PAS 1899."
    )
    chargers = ParkingChargerSerializer(many=True, required=False)

    def to_representation(self, instance: ParkingPlace) -> dict[str, Any]:
        data: dict[str, Any] = {"id": instance.pk}
        for name in services.PARKING_FIELDS:
            data[name] = getattr(instance, name)
        data["chargers"] = [
            {"station_id": link.charger.station_id, "evse_position": link.evse_position}
            for link in instance.evses.select_related("charger").order_by("charger__station_id")
        ]
        return data


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
    help_phone = serializers.CharField(
        max_length=25,
        required=False,
        allow_blank=True,
        help_text="A number drivers at this location can call for help (OCPI 2.3.0).",
    )
    energy_mix = EnergyMixField(
        required=False,
        allow_null=True,
        help_text="OCPI EnergyMix {is_green_energy, supplier_name?, energy_product_name?}; null: "
        "not entered (national access points then hold the location back, AFIR).",
    )
    parking_places = ParkingPlaceSerializer(
        many=True,
        required=False,
        help_text="The parking spaces its chargers serve (OCPI 2.3.0 Parking). Given: the "
        "location's whole list (an `id` keeps a place, places left out are removed).",
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
            "help_phone": instance.help_phone,
            "energy_mix": instance.energy_mix,
            "parking_places": ParkingPlaceSerializer(
                ParkingPlace.objects.filter(property_id=instance.property_id).order_by("pk"),
                many=True,
            ).data,
        }


_REQUIRED = ("city", "country", "latitude", "longitude")


def _model_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Return the LocationProfile fields of validated roaming data."""
    fields = {k: v for k, v in data.items() if k not in ("opening_hours", "parking_places")}
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
        places = data.get("parking_places") if data is not None else None
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
            if places is not None:
                services.parking_places_save(property_id=prop.pk, places=places)
        except services.InvalidParking as exc:
            raise ValidationError({"roaming_data": {"parking_places": [str(exc)]}}) from None
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
    # A partner with a CPO role (we are its eMSP) only.
    their_locations = serializers.IntegerField(required=False)
    our_sessions_there = serializers.IntegerField(
        required=False, help_text="Sessions of our cards at its chargers."
    )
    their_cdrs = serializers.IntegerField(required=False, help_text="Its CDRs of our cards.")
    disputes = serializers.IntegerField(
        required=False, help_text="Of those, CDRs that disagree with its tariff."
    )


class PartnerRoleSerializer(serializers.Serializer):
    role = serializers.CharField(help_text="EMSP, HUB, PTP, CPO, ... as its credentials say.")
    country_code = serializers.CharField()
    party_id = serializers.CharField()
    name = serializers.CharField()


class PartnerSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization",)
    counts = serializers.SerializerMethodField()
    roles = PartnerRoleSerializer(
        many=True,
        read_only=True,
        help_text="Every role of its credentials (a 2.3.0 hub's parties).",
    )
    versions_offered = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The OCPI versions it offers."
    )
    newer_version = serializers.SerializerMethodField(
        help_text="A newer OCPI version both sides speak, to move to with version-update; null: none."
    )
    last_sync_at = serializers.SerializerMethodField(
        help_text="The last exchange that worked: its last accepted push or its last pull."
    )
    last_error_words = serializers.SerializerMethodField(
        help_text="The last error in plain words: what failed and why."
    )
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
            "versions_offered",
            "newer_version",
            "roles",
            "endpoints",
            "business_details",
            "registered_at",
            "last_sync_at",
            "last_push_at",
            "last_pull_at",
            "last_error",
            "last_error_words",
            "last_error_at",
            "last_error_ocpi_status",
            "counts",
            "created_at",
        ]
        read_only_fields = [name for name in fields if name != "name"]

    @extend_schema_field(PartnerCountsSerializer)
    def get_counts(self, partner: Partner) -> dict[str, int]:
        return selectors.partner_counts(partner)

    @extend_schema_field({"type": "string", "nullable": True})
    def get_newer_version(self, partner: Partner) -> str | None:
        return selectors.newer_version(partner)

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_last_sync_at(self, partner: Partner) -> Any:
        moments = [m for m in (partner.last_push_at, partner.last_pull_at) if m]
        return serializers.DateTimeField().to_representation(max(moments)) if moments else None

    def get_last_error_words(self, partner: Partner) -> str:
        return plain.error_words(partner.last_error)


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


class VersionUpdateSerializer(serializers.Serializer):
    renew = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also when no newer version is offered: new credentials tokens both ways.",
    )


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
        # A national access point's outbox identity is a feed (access-points), not a partner.
        return (
            readable(Partner.objects.select_related("organization", "msp"), self.request.user)
            .exclude(role=Partner.Role.NAP)
            .order_by("pk")
        )

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
                raise ValidationError({"versions_url": [_refusal(exc)]}) from None
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

    @extend_schema(
        request=VersionUpdateSerializer,
        responses={200: PartnerSerializer},
        description="Move the partner to the newest OCPI version both sides speak (a 2.2.1 "
        "partner to 2.3.0) by a credentials update, without registering again. 400 when it "
        "offers no newer version or does not take the update (it then stays on its version). "
        'With `{"renew": true}` the same update also on its current version: new tokens both '
        "ways (for a partner that lost our answer to its registration, or tokens to replace).",
    )
    @action(detail=True, methods=["post"], url_path="version-update", filter_backends=[])
    def version_update(self, request: Request, pk: Any = None) -> Response:
        partner = self.get_object()
        self.require_edit(partner.organization_id)
        asked = VersionUpdateSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            moved = services.partner_version_update(
                partner=partner,
                our_versions_url=our_versions_url(request),
                renew=asked.validated_data["renew"],
            )
        except services.RegistrationError as exc:
            raise ValidationError({"version": [_refusal(exc)]}) from None
        return Response(PartnerSerializer(moved, context={"request": request}).data)


def _refusal(exc: services.RegistrationError) -> str:
    return f"The partner refused or could not be reached (OCPI {exc.code}): {exc.message}"


# -- payment terminals (OCPI 2.3.0 Payments) -------------------------------------------------------


class TerminalEvseSerializer(serializers.Serializer):
    charger = serializers.SlugRelatedField(
        slug_field="station_id",
        queryset=Charger.objects.all(),
        help_text="The charger's station id (a public charger with roaming on).",
    )
    connector_id = serializers.IntegerField(min_value=1)


class TerminalSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    """A PTP's payment terminal: what the PTP says about it, and the locations and EVSEs it
    serves (the operator assigns them; the PTP is told)."""

    partner_name = serializers.CharField(source="partner.name", read_only=True)
    location_ids = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Property.objects.all(),
        write_only=True,
        required=False,
        help_text="Locations whose every EVSE the terminal serves.",
    )
    evses = TerminalEvseSerializer(
        many=True, write_only=True, required=False, help_text="Single EVSEs it serves."
    )
    assigned = serializers.SerializerMethodField(
        help_text="What it serves, as OCPI ids: {location_ids, evse_uids}."
    )
    invoice_base_url = serializers.SerializerMethodField(
        help_text="Where the terminal sends drivers for our invoice (+ authorization reference)."
    )

    class Meta:
        model = Terminal
        fields = [
            "id",
            "organization",
            "partner",
            "partner_name",
            "terminal_id",
            "details",
            "last_updated",
            "assigned_at",
            "deactivated_at",
            "location_ids",
            "evses",
            "assigned",
            "invoice_base_url",
        ]
        read_only_fields = [
            "organization",
            "partner",
            "terminal_id",
            "details",
            "last_updated",
            "assigned_at",
            "deactivated_at",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "location_ids": {"type": "array", "items": {"type": "string"}},
                "evse_uids": {"type": "array", "items": {"type": "string"}},
            },
        }
    )
    def get_assigned(self, terminal: Terminal) -> dict[str, list[str]]:
        locations, evses = payments.assigned(terminal)
        return {"location_ids": locations, "evse_uids": evses}

    def get_invoice_base_url(self, terminal: Terminal) -> str:
        return payments.invoice_base_url(terminal)

    def update(self, instance: Terminal, validated_data: dict[str, Any]) -> Terminal:
        if instance.deactivated_at is not None:
            raise ValidationError(
                {
                    "evses": [
                        "The terminal is deactivated: it serves nothing until the PTP creates it again."
                    ]
                }
            )
        locations, evses = payments.assigned(instance)
        location_ids = [p.pk for p in validated_data.get("location_ids", [])]
        if "location_ids" not in validated_data:
            location_ids = [int(pk) for pk in locations]
        pairs = [(e["charger"].pk, e["connector_id"]) for e in validated_data.get("evses", [])]
        if "evses" not in validated_data:
            pairs = [
                (row.charger_id, row.connector_id)
                for row in instance.assignments.exclude(charger=None)
                if row.charger_id is not None and row.connector_id is not None
            ]
        try:
            return payments.terminal_assign(
                terminal=instance, location_ids=location_ids, evses=pairs
            )
        except payments.InvalidAssignment as exc:
            raise ValidationError({"evses": [str(exc)]}) from None


class TerminalActivationSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    """Ask a PTP to activate a terminal built into a station (OCPI 2.3.0 mod_payments
    "Activate Terminal"): its reference and where it serves; the PTP then creates it."""

    partner = serializers.PrimaryKeyRelatedField(
        queryset=Partner.objects.filter(role=Partner.Role.PTP),
        help_text="The payment terminal provider (a partner with the PTP role).",
    )
    reference = serializers.CharField(
        max_length=36, help_text="The terminal's reference, e.g. its serial number."
    )
    location_ids = serializers.ListField(
        child=serializers.PrimaryKeyRelatedField(queryset=Property.objects.all()),
        required=False,
        max_length=500,
    )
    evses = TerminalEvseSerializer(many=True, required=False, max_length=500)
    terminal_id = serializers.CharField(source="terminal.terminal_id", read_only=True, default=None)

    class Meta:
        model = TerminalActivation
        fields = [
            "id",
            "partner",
            "reference",
            "location_ids",
            "evses",
            "requested_at",
            "terminal_id",
        ]
        read_only_fields = ["requested_at"]

    def create(self, validated_data: dict[str, Any]) -> TerminalActivation:
        locations = [p.pk for p in validated_data.get("location_ids", [])]
        pairs = [(e["charger"].pk, e["connector_id"]) for e in validated_data.get("evses", [])]
        if not locations and not pairs:
            raise ValidationError({"location_ids": ["Give where the terminal serves."]})
        try:
            return payments.terminal_activate(
                partner=validated_data["partner"],
                reference=validated_data["reference"],
                location_ids=locations,
                evses=pairs,
            )
        except payments.InvalidAssignment as exc:
            raise ValidationError({"evses": [str(exc)]}) from None

    def to_representation(self, instance: TerminalActivation) -> dict[str, Any]:
        return {
            "id": instance.pk,
            "partner": instance.partner_id,
            "reference": instance.reference,
            "location_ids": instance.location_ids,
            "evses": instance.evses,
            "requested_at": instance.requested_at,
            "terminal_id": instance.terminal.terminal_id if instance.terminal else None,
        }


class TerminalViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Payment terminals PTP partners pushed (OCPI 2.3.0 Payments); PATCH assigns the locations
    (`location_ids`) and EVSEs (`evses`) a terminal serves, and the PTP is told."""

    serializer_class = TerminalSerializer
    filterset_fields = ["organization", "partner"]
    http_method_names = ["get", "patch", "post", "head", "options"]

    def get_queryset(self) -> Any:
        return readable(
            Terminal.objects.select_related("partner", "organization"), self.request.user
        ).order_by("pk")

    @extend_schema(request=None, responses=TerminalSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        """Deactivate a broken or moved terminal: it serves nothing more, and the PTP is told."""
        terminal = payments.terminal_deactivate(terminal=self.get_object())
        return Response(self.get_serializer(terminal).data)

    @extend_schema(request=TerminalActivationSerializer, responses=TerminalActivationSerializer)
    @action(detail=False, methods=["post"], serializer_class=TerminalActivationSerializer)
    def activate(self, request: Request) -> Response:
        """Ask a PTP to activate a terminal built into a station, for these locations and EVSEs."""
        serializer = TerminalActivationSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        activation = serializer.save()
        return Response(serializer.to_representation(activation), status=status.HTTP_201_CREATED)


class FinancialAdviceSerializer(serializers.Serializer):
    fac_id = serializers.CharField()
    capture_status_code = serializers.CharField()
    capture_status_message = serializers.CharField()
    currency = serializers.CharField()
    total_excl_tax = serializers.DecimalField(max_digits=12, decimal_places=4)
    total_incl_tax = serializers.DecimalField(max_digits=12, decimal_places=4)
    eft_data = serializers.ListField(child=serializers.CharField())
    last_updated = serializers.DateTimeField()
    received_at = serializers.DateTimeField()


class TerminalPaymentSerializer(serializers.ModelSerializer):
    """A session paid at a PTP's terminal: its authorization reference, the session, our
    invoice, and what the PTP confirmed it captured."""

    terminal_id = serializers.CharField(source="terminal.terminal_id", default=None)
    station_id = serializers.CharField(source="charger.station_id", default=None)
    session = serializers.PrimaryKeyRelatedField(read_only=True)
    state = serializers.SerializerMethodField(
        help_text="starting, charging, finished (waiting for the capture), paid or failed."
    )
    words = serializers.SerializerMethodField(help_text="Where it stands, in plain words.")
    confirmations = FinancialAdviceSerializer(many=True, read_only=True)

    class Meta:
        model = TerminalPayment
        fields = [
            "id",
            "organization",
            "partner",
            "terminal_id",
            "authorization_reference",
            "station_id",
            "connector_id",
            "session",
            "invoice_reference_id",
            "state",
            "words",
            "confirmations",
            "created_at",
        ]
        read_only_fields = fields

    def get_state(self, payment: TerminalPayment) -> str:
        return payments.payment_status(payment).state

    def get_words(self, payment: TerminalPayment) -> str:
        return payments.payment_status(payment).words


class TerminalPaymentViewSet(
    TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Sessions paid at PTP partners' terminals (read-only)."""

    serializer_class = TerminalPaymentSerializer
    filterset_fields = ["organization", "partner"]

    def get_queryset(self) -> Any:
        return (
            readable(
                TerminalPayment.objects.select_related("terminal", "charger", "session"),
                self.request.user,
            )
            .prefetch_related("confirmations")
            .order_by("-pk")
        )


# -- AFIR access-point feeds (/api/v1/organizations/{id}/access-points/) ----------------------------


class AccessPointFeedSerializer(serializers.Serializer):
    """An operator's feed to one country's National Access Point (AFIR)."""

    country = serializers.CharField(read_only=True, help_text="ISO 3166-1 alpha-2.")
    enabled = serializers.BooleanField(required=False)
    protocol = serializers.ChoiceField(choices=AccessPointFeed.Protocol.choices, required=False)
    endpoint_url = serializers.URLField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="The access point's OCPI base URL (https, public); /locations and /tariffs "
        "are pushed under it.",
    )
    token = serializers.CharField(
        max_length=200,
        required=False,
        write_only=True,
        help_text="The token the access point issued (write-only; left out: kept).",
    )
    token_set = serializers.SerializerMethodField(help_text="Whether a token is stored.")
    party_id = serializers.CharField(
        max_length=3,
        required=False,
        allow_blank=True,
        help_text="Our party id: the one roaming uses (any other is refused). Empty: ours.",
    )
    country_code = serializers.SerializerMethodField(help_text="Our party's country code.")
    waiting = serializers.SerializerMethodField(help_text="Changes not yet accepted.")
    freshness_seconds = serializers.SerializerMethodField(
        help_text="Age of the oldest change the access point has not accepted (0: up to date; "
        "null: not an OCPI push feed)."
    )
    last_delivery_at = serializers.SerializerMethodField()
    last_error = serializers.SerializerMethodField(help_text="The last error, in plain words.")
    last_error_at = serializers.SerializerMethodField()
    new_pull_token = serializers.BooleanField(
        required=False,
        write_only=True,
        help_text="true: issue a new token for the access point to pull our locations and "
        "tariffs with (the old one stops working); it is in pull_token of this answer only.",
    )
    pull_token = serializers.SerializerMethodField(
        help_text="The pull token just issued (shown once; we keep its hash); null otherwise."
    )
    pull_token_set = serializers.SerializerMethodField(
        help_text="Whether the access point has a pull token."
    )
    pull_url = serializers.SerializerMethodField(
        help_text="Where the access point pulls from: our OCPI base of the feed's version "
        "(/locations, /tariffs under it); null: not an OCPI feed."
    )
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field({"type": "string", "nullable": True})
    def get_pull_token(self, feed: AccessPointFeed) -> str | None:
        return self.context.get("pull_token")

    def get_pull_token_set(self, feed: AccessPointFeed) -> bool:
        return bool(feed.partner and feed.partner.incoming_token_hash)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_pull_url(self, feed: AccessPointFeed) -> str | None:
        request = self.context.get("request")
        if feed.partner is None or request is None:
            return None
        return our_versions_url(request).rsplit("/versions", 1)[0] + f"/{feed.partner.version}"

    def _state(self, feed: AccessPointFeed) -> access_points.FeedState:
        cache = self.context.setdefault("states", {})
        if feed.pk not in cache:
            cache[feed.pk] = access_points.feed_state(feed)
        state: access_points.FeedState = cache[feed.pk]
        return state

    def get_token_set(self, feed: AccessPointFeed) -> bool:
        return bool(feed.token)

    def get_country_code(self, feed: AccessPointFeed) -> str:
        return str(settings.OCPI_COUNTRY_CODE)

    def get_waiting(self, feed: AccessPointFeed) -> int:
        return self._state(feed).waiting

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_freshness_seconds(self, feed: AccessPointFeed) -> int | None:
        return self._state(feed).freshness_s if feed.partner_id else None

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_last_delivery_at(self, feed: AccessPointFeed) -> Any:
        moment = self._state(feed).last_delivery_at
        return serializers.DateTimeField().to_representation(moment) if moment else None

    def get_last_error(self, feed: AccessPointFeed) -> str:
        return self._state(feed).last_error_words

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_last_error_at(self, feed: AccessPointFeed) -> Any:
        moment = self._state(feed).last_error_at
        return serializers.DateTimeField().to_representation(moment) if moment else None


_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


class _OrganizationView(APIView):
    def organization_for(self, request: Request, organization_id: int, *, write: bool) -> Any:
        organization = get_object_or_404(readable_organizations(request.user), pk=organization_id)
        if write and not can_write(request.user, organization.pk):
            raise PermissionDenied("Your role in this organization is read-only.")
        return organization


class AccessPointListView(_OrganizationView):
    """GET /api/v1/organizations/{id}/access-points/: the operator's AFIR access-point feeds."""

    @extend_schema(responses=AccessPointFeedSerializer(many=True))
    def get(self, request: Request, organization_id: int) -> Response:
        organization = self.organization_for(request, organization_id, write=False)
        feeds = AccessPointFeed.objects.filter(organization=organization).select_related("partner")
        return Response(
            AccessPointFeedSerializer(feeds, many=True, context={"request": request}).data
        )


class AccessPointDetailView(_OrganizationView):
    """GET/PUT /api/v1/organizations/{id}/access-points/{country}/: one country's feed."""

    def feed_for(self, organization: Any, country: str) -> AccessPointFeed | None:
        if not _COUNTRY.match(country):
            raise NotFound("Give the country as two letters (ISO 3166-1 alpha-2), e.g. NL.")
        return (
            AccessPointFeed.objects.select_related("partner")
            .filter(organization=organization, country=country.upper())
            .first()
        )

    @extend_schema(responses=AccessPointFeedSerializer)
    def get(self, request: Request, organization_id: int, country: str) -> Response:
        organization = self.organization_for(request, organization_id, write=False)
        feed = self.feed_for(organization, country)
        if feed is None:
            raise NotFound("This organization has no feed to this country's access point: PUT one.")
        return Response(AccessPointFeedSerializer(feed, context={"request": request}).data)

    @extend_schema(request=AccessPointFeedSerializer, responses=AccessPointFeedSerializer)
    def put(self, request: Request, organization_id: int, country: str) -> Response:
        organization = self.organization_for(request, organization_id, write=True)
        existing = self.feed_for(organization, country)
        serializer = AccessPointFeedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if existing is None and "protocol" not in data:
            raise ValidationError({"protocol": ["Choose the access point's protocol."]})
        try:
            feed, sync_needed = access_points.feed_save(
                organization=organization, country=country, data=data
            )
        except access_points.InvalidFeed as exc:
            raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        context: dict[str, Any] = {"request": request}
        if data.get("new_pull_token"):
            try:
                context["pull_token"] = access_points.pull_token_issue(feed)
            except access_points.InvalidFeed as exc:
                raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        if sync_needed:
            access_points.full_sync_after_commit(feed)
        return Response(AccessPointFeedSerializer(feed, context=context).data)


# -- our eMSP identity ----------------------------------------------------------------------------


class EmspIdentitySerializer(serializers.Serializer):
    country_code = serializers.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. NL.")
    party_id = serializers.CharField(max_length=3, help_text="The registered party id, e.g. EVB.")
    emaid_prefix = serializers.CharField(
        max_length=9,
        required=False,
        allow_blank=True,
        help_text="Country code and party id, then up to 4 letters or digits (empty: country "
        "code and party id). Contract ids (eMAIDs) are this prefix and the card's number, "
        "14 characters.",
    )
    business_name = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="The issuer partners show on our cards (empty: the organization's name).",
    )
    currency = serializers.CharField(
        max_length=3,
        required=False,
        help_text="ISO 4217: what drivers are billed in (default EUR). A partner CDR in another "
        "currency is converted at its day's reference rate, stated on the bill.",
    )
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_currency(self, value: str) -> str:
        if not is_known_currency(value):
            raise ValidationError("An ISO 4217 currency code, e.g. EUR.")
        return value.upper()


class EmspIdentityView(_OrganizationView):
    """GET/PUT /api/v1/organizations/{id}/emsp-identity/: the organization's own party as an
    eMSP, on every token it issues to partner CPOs (docs/ocpi.md, "eMSP")."""

    @extend_schema(responses=EmspIdentitySerializer)
    def get(self, request: Request, organization_id: int) -> Response:
        organization = self.organization_for(request, organization_id, write=False)
        identity = EmspIdentity.objects.filter(organization=organization).first()
        if identity is None:
            raise NotFound("This organization has no eMSP identity yet: PUT one.")
        return Response(EmspIdentitySerializer(identity).data)

    @extend_schema(request=EmspIdentitySerializer, responses=EmspIdentitySerializer)
    def put(self, request: Request, organization_id: int) -> Response:
        organization = self.organization_for(request, organization_id, write=True)
        serializer = EmspIdentitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            identity = emsp.identity_save(
                organization=organization,
                country_code=data["country_code"],
                party_id=data["party_id"],
                emaid_prefix=data.get("emaid_prefix", ""),
                business_name=data.get("business_name", ""),
                currency=data.get("currency", ""),
            )
        except emsp_rules.InvalidIdentity as exc:
            raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        return Response(EmspIdentitySerializer(identity).data)
