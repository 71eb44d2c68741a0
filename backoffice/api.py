"""REST API for organizations, members, properties, and the token login endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.crypto import get_random_string
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings

from . import services
from .models import Membership, Organization, Property
from .permissions import OrganizationWritePermission
from .tenancy import (
    Conflict,
    TenantFilterBackend,
    TenantSerializerMixin,
    can_write,
    delete_refusal,
    is_owner,
    protected_dependants,
    readable,
    readable_organizations,
    role_in,
)

# Real time zones lie within +-14:00; PostgreSQL refuses an offset past +-15:59 with an error (a
# 500), so a query's moments are checked and turned to UTC before they reach the database.
MAX_UTC_OFFSET = timedelta(hours=14)
OFFSET_ERROR = "A time zone offset lies between -14:00 and +14:00."


def as_utc(value: datetime) -> datetime:
    """An aware moment in UTC (naive ones are returned as they are); ValueError past +-14:00."""
    offset = value.utcoffset()
    if offset is None:
        return value
    if abs(offset) > MAX_UTC_OFFSET:
        raise ValueError(OFFSET_ERROR)
    return value.astimezone(UTC)


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return as_utc(moment)
        except ValueError as exc:
            raise DjangoValidationError(str(exc), code="invalid") from exc


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 moment in a query string, checked and compared in UTC."""

    field_class = UtcIsoDateTimeField


def as_drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class TenantViewSetMixin:
    """Writes need owner/manager in the object's organization; reads need membership.

    Serializers add backoffice.tenancy.TenantSerializerMixin, so every object a write
    refers to must belong to an organization the user may write in. Ids in URLs are
    whole numbers (anything else is a 404), filters offer only the user's objects, and
    deleting an object that history depends on answers 409 with what blocks it.
    """

    lookup_value_regex = "[0-9]+"
    permission_classes = [IsAuthenticated, OrganizationWritePermission]
    filter_backends = [TenantFilterBackend]
    # Completes "This <object> has 12 <dependants>; ..." when a delete is refused.
    protected_delete_hint = ""

    def perform_destroy(self, instance) -> None:
        dependants = protected_dependants(instance)
        if dependants:
            raise Conflict(delete_refusal(instance, dependants, self.protected_delete_hint))
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError:
            raise Conflict(delete_refusal(instance, [], self.protected_delete_hint)) from None

    def organization_id_of(self, obj) -> int | None:
        return obj.organization_id

    def require_edit(self, organization_id: int | None) -> None:
        """For writes whose organization comes from the body (create, move): the same rule."""
        if not can_write(self.request.user, organization_id):
            if role_in(self.request.user, organization_id) is None:
                raise ValidationError({"organization": "Unknown organization."})
            raise PermissionDenied("Your role in this organization is read-only.")


class AuthTokenView(ObtainAuthToken):
    """POST {"username", "password"} -> {"token"}. Members sign in with their email (any case)."""

    # The API's own (ObtainAuthToken names DRF's): a body that does not parse is told in plain
    # words here too (backoffice.parsers), and answers render as every other answer.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES
    renderer_classes = api_settings.DEFAULT_RENDERER_CLASSES

    @extend_schema(responses={200: {"type": "object", "properties": {"token": {"type": "string"}}}})
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class OrganizationSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "created_at"]


class MemberSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="For a new member: their password. Leave it out to email them an invitation instead.",
    )
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    id = serializers.IntegerField(read_only=True)
    user_id = serializers.IntegerField(read_only=True)
    invitation_sent = serializers.BooleanField(
        read_only=True,
        help_text="Whether the invitation email went out (false without one, or when the mail "
        "server did not take it: the member is added either way).",
    )


class OrganizationViewSet(
    TenantViewSetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = OrganizationSerializer

    def get_queryset(self):
        return readable_organizations(self.request.user).order_by("pk")

    def organization_id_of(self, obj) -> int:
        return obj.pk

    def perform_create(self, serializer):
        if not self.request.user.is_staff:
            raise PermissionDenied("Only staff create organizations.")
        serializer.instance = services.organization_create(name=serializer.validated_data["name"])

    @extend_schema(request=MemberSerializer, responses={201: MemberSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=MemberSerializer)
    def members(self, request, pk=None):
        organization = get_object_or_404(self.get_queryset(), pk=pk)
        if request.method == "GET":
            rows = Membership.objects.filter(organization=organization).select_related("user")
            return Response(
                [
                    {
                        "id": m.pk,
                        "user_id": m.user_id,
                        "email": m.user.email or m.user.username,
                        "role": m.role,
                    }
                    for m in rows
                ]
            )
        if not is_owner(request.user, organization.pk):
            raise PermissionDenied("Only owners manage members.")
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        email = data["email"].strip().lower()
        # Without a password: the portal's invitation email (a link to choose one), sent whether
        # or not the address already has an account, so the answer never tells which.
        invite = not data.get("password")
        try:
            membership = services.member_add(
                organization=organization,
                email=email,
                role=data["role"],
                password=get_random_string(32) if invite else data["password"],
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from None
        sent = False
        if invite:
            from .views import send_invitation

            sent = send_invitation(request, email=email, organization=organization)
        return Response(
            {
                "id": membership.pk,
                "user_id": membership.user_id,
                "email": membership.user.email,
                "role": membership.role,
                "invitation_sent": sent,
            },
            status=status.HTTP_201_CREATED,
        )


class PropertySerializer(TenantSerializerMixin, serializers.ModelSerializer):
    owner_fields = ("organization",)

    class Meta:
        model = Property
        fields = [
            "id",
            "organization",
            "name",
            "address",
            "timezone",
            "currency",
            "roaming_enabled",
            "guest_charging_enabled",
            "created_at",
        ]


class PropertyViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    serializer_class = PropertySerializer
    filterset_fields = ["organization"]
    search_fields = ["name", "address"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    protected_delete_hint = "move its chargers to another location first"

    def get_queryset(self):
        return readable(
            Property.objects.select_related("organization"), self.request.user
        ).order_by("pk")

    def perform_create(self, serializer):
        self.require_edit(serializer.validated_data["organization"].pk)
        serializer.save()

    def perform_update(self, serializer):
        if "organization" in serializer.validated_data:
            self.require_edit(serializer.validated_data["organization"].pk)
        serializer.save()
