"""REST API for chargers, their message log, commands and charging sessions."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import django_filters
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.manager import BaseManager
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from authorization.models import TokenGroup
from authorization.services import token_group_touch
from backoffice.api import TenantViewSetMixin, UtcIsoDateTimeFilter
from backoffice.models import Property
from backoffice.pagination import MAX_ID, query_bool, query_choice, query_int
from backoffice.tenancy import TenantSerializerMixin
from chargers.devices import commands
from chargers.messagelog.log import serialize_message
from chargers.models import (
    OCPP_PASSWORD_MIN_LENGTH,
    Charger,
    ChargerCertificate,
    ChargerOperation,
    ChargerOperationStatus,
    ChargingSession,
    Command,
    Connector,
    DeviceVariable,
    SecurityEvent,
    station_id_validator,
)
from chargers.ocpp.energy import METER_DIGITS, WH_PLACES, kwh
from chargers.ocpp.protocol import CSMS_ACTIONS_V16, OcppError
from chargers.ocpp.protocol21 import CSMS_ACTIONS as CSMS_ACTIONS_V21
from chargers.ocpp.protocol201 import CSMS_ACTIONS as CSMS_ACTIONS_V201
from chargers.ocpp.v201_commands import TRANSLATED as TRANSLATED_FOR_V201
from chargers.sessions.payer import PAYER_TEXT, Payer
from chargers.web.api_devices import ChargerV201ApiMixin
from chargers.web.api_reservations import ReservationsApiMixin
from chargers.web.providers import (
    session_settlement,
    session_settlement_many,
    signed_meter_values,
    signed_meter_values_many,
)
from chargers.web.selectors import chargers_for, message_log, sessions_for
from chargers.web.session_rows import (
    SESSION_ROW_DEFERRED,
    SESSION_ROW_RELATED,
    duration_so_far_s,
    session_payer,
)
from stays.models import Unit

LOG_PAGE_MAX = 500  # rows of the message log per page (keyset paging with `before`)

if TYPE_CHECKING:
    from authorization.decisions import Context


class ConnectorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Connector
        fields = [
            "connector_id",
            "status",
            "error_code",
            "vendor_error_code",
            "info",
            "status_timestamp",
        ]


def _insert_or_refuse(charger: Charger) -> None:
    """Insert a new charger; its Station ID taken meanwhile is the API's usual 400."""
    from chargers.security.services import STATION_ID_UNAVAILABLE

    try:
        with transaction.atomic():
            charger.save()
    except IntegrityError:
        raise ValidationError({"station_id": [STATION_ID_UNAVAILABLE]}) from None


class ChargerSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    # Declared so the model's unique check (which would say "already exists") is not added.
    station_id = serializers.CharField(max_length=48, validators=[station_id_validator])
    property = serializers.PrimaryKeyRelatedField(queryset=Property.objects.all(), allow_null=False)
    unit = serializers.PrimaryKeyRelatedField(
        queryset=Unit.objects.all(),
        allow_null=True,
        required=False,
        help_text="The unit of its property it serves (stays, docs/pms.md); null: shared by the property.",
    )
    ocpp_password = serializers.CharField(
        write_only=True,
        required=False,
        min_length=OCPP_PASSWORD_MIN_LENGTH,
        max_length=40,
        trim_whitespace=False,
        help_text=(
            "HTTP Basic password of the charger (security profiles 1 and 2), 16-40 characters; write-only. "
            "Leave it out when creating a charger to get a generated one: the response shows it once."
        ),
    )
    security_profile = serializers.ChoiceField(
        choices=Charger.SecurityProfile.choices,
        required=False,
        help_text="OCPP security profile a connection must meet (default 1). 0 and lowering: support staff only.",
    )
    # A plain integer: the same choices twice would make two enums in the OpenAPI schema.
    security_profile_pending = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="A higher profile the charger accepted over OCPP; it becomes security_profile at its first "
        "connection that meets it.",
    )
    status = serializers.SerializerMethodField()
    connectors = serializers.SerializerMethodField()
    token_groups = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=TokenGroup.objects.all()
    )
    roaming_enabled = serializers.BooleanField(allow_null=True, required=False)
    guest_charging_enabled = serializers.BooleanField(allow_null=True, required=False)
    has_password = serializers.SerializerMethodField()

    class Meta:
        model = Charger
        fields = [
            "station_id",
            "name",
            "property",
            "access_mode",
            "ownership",
            "security_profile",
            "security_profile_pending",
            "ocpp_password",
            "has_password",
            "ocpp_password_set_at",
            "license_valid_until",
            "out_of_order",
            "status",
            "last_heartbeat",
            "last_seen_at",
            "vendor",
            "model",
            "serial_number",
            "firmware_version",
            "registration_status",
            "connectors",
            "roaming_enabled",
            "guest_charging_enabled",
            "token_groups",
            "ocpp_version",
            "unit",
        ]
        read_only_fields = [
            "vendor",
            "model",
            "serial_number",
            "firmware_version",
            "last_seen_at",
            "security_profile_pending",
            "ocpp_password_set_at",
            "ocpp_version",
        ]

    last_heartbeat = serializers.DateTimeField(
        source="last_heartbeat_at", read_only=True, allow_null=True
    )

    def get_status(self, obj: Charger) -> str:
        return obj.status

    def get_has_password(self, obj: Charger) -> bool:
        return bool(obj.ocpp_password_hash)

    def get_connectors(self, obj: Charger) -> list[dict]:
        return ConnectorSerializer(
            [c for c in obj.connectors.all() if c.connector_id > 0], many=True
        ).data

    def validate_station_id(self, value: str) -> str:
        if self.instance:
            if value != self.instance.station_id:
                raise ValidationError(
                    "The Station ID is the charger's OCPP identity and cannot change."
                )
            return value
        from chargers.security.services import station_id_problem

        problem = station_id_problem(value)
        if problem:
            raise ValidationError(problem)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        prop = attrs.get("property") or getattr(self.instance, "property", None)
        if self.instance is not None and "property" in attrs and self.instance.property_id:
            if prop is not None and prop.organization_id != self.instance.property.organization_id:
                raise ValidationError(
                    {"property": "A charger moves only between locations of its organization."}
                )
        unit = attrs.get(
            "unit", getattr(self.instance, "unit", None) if "property" not in attrs else None
        )
        if unit is not None and prop is not None and unit.property_id != prop.pk:
            raise ValidationError({"unit": "This unit belongs to another property."})
        for group in attrs.get("token_groups", []):
            if prop is None or group.organization_id != prop.organization_id:
                raise ValidationError(
                    {"token_groups": "Token groups must belong to the charger's organization."}
                )
        return attrs

    def to_representation(self, instance: Charger) -> dict[str, Any]:
        data = super().to_representation(instance)
        if getattr(self, "generated_password", None):
            # Shown this once: only its hash is stored.
            data["ocpp_password"] = self.generated_password
        return data

    def _save(self, instance: Charger, validated_data: dict[str, Any]) -> Charger:
        from chargers.security.services import SecurityProfileRefused, charger_set_security_profile

        password = validated_data.pop("ocpp_password", None)
        profile = validated_data.pop("security_profile", None)
        groups = validated_data.pop("token_groups", None)
        creating = instance.pk is None
        for name, value in validated_data.items():
            setattr(instance, name, value)
        if password:
            instance.set_ocpp_password(password)
        # A new Station ID was checked by validate_station_id; one taken since (the same charger
        # added twice at once: a double submit, a retried request) fails the insert, a 400 too.
        instance.full_clean(exclude=["ocpp_password_hash"], validate_unique=not creating)
        if creating:
            _insert_or_refuse(instance)
        else:
            instance.save()
        if creating or profile is not None:
            request = self.context.get("request")
            try:
                self.generated_password = charger_set_security_profile(
                    charger=instance,
                    profile=instance.security_profile if profile is None else profile,
                    by_staff=bool(request and request.user.is_staff),
                )
            except SecurityProfileRefused as exc:
                raise ValidationError({"security_profile": str(exc)}) from None
        if groups is not None:
            before = set(instance.token_groups.values_list("pk", flat=True))
            instance.token_groups.set(groups)
            token_group_touch(group_ids=sorted(before | {g.pk for g in groups}))
        return instance

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Charger:
        return self._save(Charger(), validated_data)

    @transaction.atomic
    def update(self, instance: Charger, validated_data: dict[str, Any]) -> Charger:
        return self._save(instance, validated_data)


def _start_context(request: Request) -> Context:
    """Who asks for a remote start: our app (the default) or another network (`?context=`)."""
    from authorization.decisions import Context

    asked = query_choice(request, "context", (Context.REMOTE_APP.value, Context.REMOTE_MSP.value))
    return Context(asked or Context.REMOTE_APP)


class ChargerFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=[("online", "online"), ("offline", "offline")], method="filter_status"
    )
    search = django_filters.CharFilter(method="filter_search")

    class Meta:
        model = Charger
        fields = ["property", "access_mode", "out_of_order", "status", "search"]

    def filter_status(
        self, queryset: QuerySet[Charger], name: str, value: str
    ) -> QuerySet[Charger]:
        from datetime import timedelta

        from django.db.models import Q

        # Approximates is_online() in SQL with the largest interval; the row-level check is exact.
        threshold = timezone.now() - timedelta(seconds=2 * 3600)
        online = Q(last_seen_at__gte=threshold) & ~Q(connection_id="")
        ids = [c.pk for c in queryset.filter(online) if c.is_online()]
        if value == "online":
            return queryset.filter(pk__in=ids)
        return queryset.exclude(pk__in=ids)

    def filter_search(
        self, queryset: QuerySet[Charger], name: str, value: str
    ) -> QuerySet[Charger]:
        from django.db.models import Q

        return queryset.filter(
            Q(station_id__icontains=value)
            | Q(name__icontains=value)
            | Q(serial_number__icontains=value)
        )


class CommandSerializer(serializers.Serializer):
    status = serializers.CharField()
    response = serializers.JSONField()


class SecurityEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = SecurityEvent
        fields = ["id", "source", "event_type", "timestamp", "tech_info", "critical", "received_at"]


class OperationStatusSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChargerOperationStatus
        fields = ["status", "source", "received_at"]


class OperationSerializer(serializers.ModelSerializer):
    history = OperationStatusSerializer(many=True, read_only=True)

    class Meta:
        model = ChargerOperation
        fields = [
            "id",
            "kind",
            "request_id",
            "status",
            "details",
            "created_at",
            "updated_at",
            "history",
        ]


class CertificateSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChargerCertificate
        fields = [
            "serial_number",
            "fingerprint_sha256",
            "subject",
            "not_before",
            "not_after",
            "delivery",
            "issued_at",
            "revoked_at",
            "certificate_pem",
        ]


class DeviceVariableSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceVariable
        fields = [
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            "value",
            "mutability",
            "persistent",
            "constant",
            "data_type",
            "unit",
            "values_list",
            "standardized",
            "updated_at",
        ]


class RotatePasswordSerializer(serializers.Serializer):
    over_ocpp = serializers.BooleanField(
        default=False,
        help_text=(
            "Send a new random AuthorizationKey to the connected charger (ChangeConfiguration); it replaces the "
            "password only when the charger accepts it, and nobody sees it. Otherwise a new password is "
            "generated and returned once, for you to configure on the charger."
        ),
    )


def _security_command_check(charger: Charger, action: str, payload: dict) -> None:
    """Refuse security-relevant commands the charger must not get (raises InvalidCommand)."""
    from chargers.security import credentials

    if action != "ChangeConfiguration":
        return
    key = str(payload.get("key", "")).lower()
    if key == "authorizationkey":
        error = credentials.authorization_key_error(payload.get("value"))
        if error:
            raise commands.InvalidCommand(OcppError("PropertyConstraintViolation", error))
    elif key == "securityprofile":
        value = str(payload.get("value", ""))
        if not value.isdigit() or not charger.security_profile < int(value) <= 3:
            # A00.FR.005: OCPP never lowers a profile; A05.FR.01: only a higher one is sent.
            raise commands.InvalidCommand(
                OcppError(
                    "PropertyConstraintViolation",
                    f"SecurityProfile can only be raised over OCPP, above the charger's {charger.security_profile}.",
                )
            )
        if int(value) < 3 and not charger.ocpp_password_hash:
            raise commands.InvalidCommand(
                OcppError(
                    "PropertyConstraintViolation",
                    "Give the charger a password before raising it to a password profile.",
                )
            )


class ChargerCreatedSerializer(ChargerSerializer):
    """The answer to creating a charger, for the schema: it carries the generated password."""

    ocpp_password = serializers.CharField(
        read_only=True,
        help_text="The generated HTTP Basic password, shown this once (only when none was given).",
    )


@extend_schema_view(
    create=extend_schema(request=ChargerSerializer, responses={201: ChargerCreatedSerializer})
)
class ChargerViewSet(
    ReservationsApiMixin, ChargerV201ApiMixin, TenantViewSetMixin, viewsets.ModelViewSet
):
    serializer_class = ChargerSerializer
    filterset_class = ChargerFilter
    lookup_field = "station_id"
    lookup_value_regex = "[^/]+"
    protected_delete_hint = "mark it out of order instead of deleting it"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Charger]:
        return (
            chargers_for(self.request.user).prefetch_related("token_groups").order_by("station_id")
        )

    def organization_id_of(self, obj: Charger) -> int | None:
        return obj.organization_id

    def perform_create(self, serializer: ChargerSerializer) -> None:
        self.require_edit(serializer.validated_data["property"].organization_id)
        serializer.save()

    def perform_update(self, serializer: ChargerSerializer) -> None:
        from chargers.devices.placement import charger_place

        data = serializer.validated_data
        if "property" in data:
            self.require_edit(data["property"].organization_id)
        if "property" in data or "unit" in data:
            # Moves go through the one placement service, which logs them (stays.ChargerPlacement).
            charger = serializer.instance
            prop = data.pop("property", charger.property)
            unit = data.pop("unit", charger.unit if prop == charger.property else None)
            charger_place(charger=charger, property=prop, unit=unit, by=self.request.user)
            charger.refresh_from_db()
        serializer.save()

    @extend_schema(
        parameters=[
            OpenApiParameter("action", str),
            OpenApiParameter("search", str),
            OpenApiParameter("direction", str, enum=["in", "out"]),
            OpenApiParameter("message_type", str, enum=["CALL", "CALLRESULT", "CALLERROR"]),
            OpenApiParameter(
                "before",
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                description="Keyset: return rows older than this id.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": LOG_PAGE_MAX},
                description=f"Rows per page: 50 unless given, at most {LOG_PAGE_MAX}.",
            ),
        ],
        responses={200: {"type": "object"}},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def logs(self, request: Request, station_id: str | None = None) -> Response:
        charger = self.get_object()
        limit = query_int(request, "limit", default=50, low=1, high=LOG_PAGE_MAX) or 50
        before = query_int(request, "before", default=None, low=1, high=MAX_ID)
        rows = message_log(
            charger,
            search=request.query_params.get("search", ""),
            action=request.query_params.get("action", ""),
            direction=query_choice(request, "direction", ("in", "out")),
            message_type=query_choice(request, "message_type", ("CALL", "CALLRESULT", "CALLERROR")),
            before_id=before,
            limit=limit,
        )
        results = [serialize_message(row) for row in rows]
        next_url = None
        if len(rows) == limit:
            params = request.query_params.copy()
            params["before"] = rows[-1].pk
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response({"next": next_url, "results": results})

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={200: CommandSerializer},
        parameters=[
            OpenApiParameter(
                "context",
                str,
                enum=["remote_app", "remote_msp"],
                description="Remote starts: asked by our app (default) or by another network.",
            )
        ],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"commands/(?P<ocpp_action>[A-Za-z]+)",
        filter_backends=[],
    )
    def commands(
        self, request: Request, station_id: str | None = None, ocpp_action: str | None = None
    ) -> Response:
        charger = self.get_object()
        self.require_edit(self.organization_id_of(charger))
        # A 2.0.1 (2.1) charger takes its version's actions and the 1.6 commands we translate.
        allowed = (
            CSMS_ACTIONS_V16
            if not charger.speaks_v2()
            else (CSMS_ACTIONS_V21 if charger.ocpp_version == "2.1" else CSMS_ACTIONS_V201)
            | set(TRANSLATED_FOR_V201)
        )
        if ocpp_action not in allowed:
            raise ValidationError(
                {"action": f"{ocpp_action} is not an action the central system sends."}
            )
        payload = request.data if isinstance(request.data, dict) else None
        if payload is None:
            raise ValidationError({"payload": "Send the OCPP payload as a JSON object."})
        payload = dict(payload)
        if ocpp_action in ("GetLog", "SignedUpdateFirmware") and "requestId" not in payload:
            from chargers.devices.remote import new_request_id

            payload["requestId"] = new_request_id()
        try:
            _security_command_check(charger, ocpp_action, payload)
            if ocpp_action == "RemoteStartTransaction":
                command = self._remote_start(request, charger, dict(payload))
                if isinstance(command, Response):
                    return command
            elif ocpp_action == "RequestStartTransaction":
                command = self._request_start(request, charger, dict(payload))
                if isinstance(command, Response):
                    return command
            else:
                command = commands.send_command_sync(
                    charger,
                    ocpp_action,
                    dict(payload),
                    source="api",
                    user_id=request.user.pk,
                    once=True,
                )
        except commands.AlreadyPending as exc:
            return Response(
                {"status": "pending", "detail": exc.told(ocpp_action or "")},
                status=status.HTTP_409_CONFLICT,
            )
        except commands.InvalidCommand as exc:
            return Response(
                {"status": "invalid", "error": exc.error.code, "detail": exc.error.description},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except commands.ChargerOffline:
            return Response(
                {"status": "offline", "detail": "The charger is not connected."},
                status=status.HTTP_409_CONFLICT,
            )
        except commands.CommandTimeout as exc:
            return Response(
                {"status": "timeout", "detail": exc.command.error},
                status=status.HTTP_504_GATEWAY_TIMEOUT,
            )
        if command.status == command.Status.ERROR:
            return Response(
                {"status": "error", "response": command.response},
                status=status.HTTP_502_BAD_GATEWAY,
            )
        body = {"status": command.result_status or "answered", "response": command.response}
        if ocpp_action in ("GetLog", "SignedUpdateFirmware"):
            body["requestId"] = payload["requestId"]
        return Response(body)

    @extend_schema(request=RotatePasswordSerializer, responses={200: {"type": "object"}})
    @action(detail=True, methods=["post"], url_path="rotate-password", filter_backends=[])
    def rotate_password(self, request: Request, station_id: str | None = None) -> Response:
        """A new password for the charger: generated and shown once, or pushed over OCPP."""
        from chargers.devices.remote import authorization_key_push_sync
        from chargers.security.services import charger_rotate_password

        charger = self.get_object()
        self.require_edit(self.organization_id_of(charger))
        options = RotatePasswordSerializer(
            data=request.data if isinstance(request.data, dict) else {}
        )
        options.is_valid(raise_exception=True)
        if not options.validated_data["over_ocpp"]:
            return Response(
                {"ocpp_password": charger_rotate_password(charger=charger), "has_password": True}
            )
        try:
            command = authorization_key_push_sync(charger, source="api", user_id=request.user.pk)
        except commands.ChargerOffline:
            return Response(
                {"status": "offline", "detail": "The charger is not connected."},
                status=status.HTTP_409_CONFLICT,
            )
        except commands.CommandTimeout as exc:
            return Response(
                {
                    "status": "timeout",
                    "detail": f"{exc.command.error} The old password stays valid.",
                },
                status=status.HTTP_504_GATEWAY_TIMEOUT,
            )
        adopted = command.status == command.Status.ANSWERED and command.result_status == "Accepted"
        return Response({"status": command.result_status or command.status, "adopted": adopted})

    @extend_schema(
        parameters=[
            OpenApiParameter("before", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
            OpenApiParameter("critical", bool),
        ],
        responses={200: SecurityEventSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="security-events",
        filter_backends=[],
        pagination_class=None,
    )
    def security_events(self, request: Request, station_id: str | None = None) -> Response:
        """Security events of the charger, newest first (100 a page; ?before=<id> for older ones)."""
        charger = self.get_object()
        rows = SecurityEvent.objects.filter(charger=charger).order_by("-id")
        before = query_int(request, "before", default=None, low=1, high=MAX_ID)
        if before is not None:
            rows = rows.filter(id__lt=before)
        critical = query_bool(request, "critical")
        if critical is not None:
            rows = rows.filter(critical=critical)
        return Response(SecurityEventSerializer(rows[:100], many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=["log", "firmware"])],
        responses={200: OperationSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def operations(self, request: Request, station_id: str | None = None) -> Response:
        """Log uploads and signed firmware updates with their status history, newest first."""
        charger = self.get_object()
        rows = ChargerOperation.objects.filter(charger=charger).prefetch_related("history")
        kind = query_choice(request, "kind", tuple(ChargerOperation.Kind.values))
        if kind:
            rows = rows.filter(kind=kind)
        return Response(OperationSerializer(rows[:50], many=True).data)

    @extend_schema(responses={200: DeviceVariableSerializer(many=True)})
    @action(
        detail=True,
        methods=["get"],
        url_path="device-model",
        filter_backends=[],
        pagination_class=None,
    )
    def device_model(self, request: Request, station_id: str | None = None) -> Response:
        """The OCPP 2.0.1 device model the charger reported (NotifyReport, GetVariables answers):
        one row per component, variable and attribute. Change a value with the SetVariables command."""
        charger = self.get_object()
        rows = DeviceVariable.objects.filter(charger=charger)
        return Response(DeviceVariableSerializer(rows, many=True).data)

    @extend_schema(responses={200: CertificateSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def certificates(self, request: Request, station_id: str | None = None) -> Response:
        """Client certificates the central system's CA issued to this charger."""
        charger = self.get_object()
        return Response(CertificateSerializer(charger.certificates.all()[:50], many=True).data)

    def _remote_start(
        self, request: Request, charger: Charger, payload: dict
    ) -> Command | Response:
        """Remote starts go through the authorization engine first (and are recorded)."""
        from chargers.devices.remote import remote_start_sync

        id_tag = payload.get("idTag")
        connector_id = payload.get("connectorId")
        if (
            not isinstance(id_tag, str)
            or not id_tag
            or (connector_id is not None and not isinstance(connector_id, int))
        ):
            raise commands.InvalidCommand(
                OcppError(
                    "TypeConstraintViolation",
                    "RemoteStartTransaction needs idTag (a string) and optionally connectorId (an integer)",
                )
            )
        profile = payload.get("chargingProfile")
        if isinstance(profile, dict) and profile.get("chargingProfilePurpose") != "TxProfile":
            # OCPP 1.6 §5.11: the profile of a remote start is a TxProfile.
            raise commands.InvalidCommand(
                OcppError(
                    "PropertyConstraintViolation",
                    "chargingProfile of a remote start must be a TxProfile",
                )
            )
        context = _start_context(request)
        commands.check_outgoing_or_raise("RemoteStartTransaction", payload)
        decision, command = remote_start_sync(
            charger,
            id_tag=id_tag,
            connector_id=connector_id,
            context=context,
            source="api",
            user_id=request.user.pk,
            charging_profile=profile,
            once=True,
        )
        if command is None:
            return Response(
                {
                    "status": str(decision.status),
                    "reason": decision.reason,
                    "message": decision.message,
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        return command

    def _request_start(
        self, request: Request, charger: Charger, payload: dict
    ) -> Command | Response:
        """OCPP 2.0.1 RequestStartTransaction: the same authorization engine first (recorded),
        as for a 1.6 remote start; a missing remoteStartId is drawn."""
        from chargers.devices.remote import remote_start_decide_sync
        from chargers.ocpp.v201_commands import new_remote_start_id

        payload.setdefault("remoteStartId", new_remote_start_id())
        commands.check_outgoing_or_raise("RequestStartTransaction", payload, charger.ocpp_version)
        context = _start_context(request)
        decision = remote_start_decide_sync(
            charger,
            id_tag=payload["idToken"]["idToken"],
            connector_id=payload.get("evseId"),
            context=context,
        )
        if not decision.accepted:
            return Response(
                {
                    "status": str(decision.status),
                    "reason": decision.reason,
                    "message": decision.message,
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        return commands.send_command_sync(
            charger,
            "RequestStartTransaction",
            payload,
            source="api",
            user_id=request.user.pk,
            once=True,
        )


class WhField(serializers.DecimalField):
    """A meter register in Wh as a JSON number, exact: 1234.56, and 1000 for a whole one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            max_digits=METER_DIGITS, decimal_places=WH_PLACES, coerce_to_string=False, **kwargs
        )

    def to_representation(self, value: Decimal | None) -> int | float | None:
        if value is None:
            return None
        exact = Decimal(value)
        return int(exact) if exact == exact.to_integral_value() else float(exact.normalize())


class SignedValueSchema(serializers.Serializer):
    """One signed reading (documentation of `signed_meter_values.values`)."""

    nature = serializers.CharField(help_text="start, end or intermediate")
    status = serializers.CharField(
        help_text="verified, invalid_signature, unknown_key or malformed"
    )
    reason = serializers.CharField(help_text="Why it is not verified; empty when it is.")
    value_wh = serializers.CharField(allow_null=True, help_text="The signed reading, Wh.")
    time = serializers.CharField(allow_null=True, help_text="The meter's clock, ISO 8601.")
    meter_serial = serializers.CharField()
    pagination = serializers.CharField(help_text="OCMF PG, e.g. T12")
    ocmf = serializers.CharField(help_text="The OCMF record as the meter signed it.")
    encoding = serializers.CharField()
    signing_method = serializers.CharField()


class SignedMeterValuesSchema(serializers.Serializer):
    """A session's signed meter values (documentation of `signed_meter_values`)."""

    status = serializers.CharField(
        help_text="verified, invalid_signature, unknown_key, malformed or incomplete"
    )
    reason = serializers.CharField()
    start = SignedValueSchema(allow_null=True)
    end = SignedValueSchema(allow_null=True)
    public_key = serializers.CharField(help_text="The meter's registered key, hex DER.")
    signing_method = serializers.CharField()
    encoding_method = serializers.CharField()
    values = SignedValueSchema(many=True)
    energy_wh = serializers.CharField(
        allow_null=True, help_text="Signed end - signed start, Wh; only when both verify."
    )
    text = serializers.CharField(help_text="The status in plain words.")
    transparency_url = serializers.CharField(
        allow_null=True,
        help_text="The file for the S.A.F.E. transparency software (OCMF records and key).",
    )
    how_to_check = serializers.CharField()
    start_kwh = serializers.CharField(allow_null=True, help_text="Signed start, kWh.")
    end_kwh = serializers.CharField(allow_null=True, help_text="Signed end, kWh.")
    energy_kwh = serializers.CharField(
        allow_null=True, help_text="Signed end - signed start, kWh; only when both verify."
    )


class SettlementSchema(serializers.Serializer):
    """Whether the session's charge is settled (documentation of `settlement`)."""

    status = serializers.CharField(help_text="held, waived, pending, short or settled")
    reason = serializers.CharField(help_text="Why it is held; empty otherwise.")
    text = serializers.CharField(help_text="The status in plain words.")


class SessionListSerializer(serializers.ListSerializer):
    """A page of sessions: their signatures and settlements read for the page at once (a few
    queries per page, not two per session)."""

    def to_representation(self, data: Any) -> list:
        sessions = list(data.all() if isinstance(data, BaseManager) else data)
        child = self.child
        assert isinstance(child, SessionSerializer)
        child.batch = {
            "signed": signed_meter_values_many.call(sessions),
            "settlement": session_settlement_many.call(sessions),
        }
        try:
            return super().to_representation(sessions)
        finally:
            child.batch = None


class SessionSerializer(serializers.ModelSerializer):
    # Set by SessionListSerializer for a page: {"signed": {pk: ...}, "settlement": {pk: ...}}.
    batch: dict[str, dict[int, dict | None]] | None = None
    station_id = serializers.CharField(source="charger.station_id")
    meter_start_wh = WhField(
        read_only=True,
        allow_null=True,
        help_text="Energy register at the start, Wh (decimals as reported); null: the charger "
        "reported no energy reading.",
    )
    meter_stop_wh = WhField(read_only=True, allow_null=True)
    energy_kwh = serializers.SerializerMethodField()
    no_energy_reading = serializers.SerializerMethodField()
    signed_meter_values = serializers.SerializerMethodField()
    settlement = serializers.SerializerMethodField()
    duration_s = serializers.SerializerMethodField()
    payer = serializers.SerializerMethodField()
    payer_text = serializers.SerializerMethodField()

    class Meta:
        model = ChargingSession
        list_serializer_class = SessionListSerializer
        fields = [
            "id",
            "transaction_id",
            "station_id",
            "connector_id",
            "id_tag",
            "id_tag_status",
            "started_at",
            "stopped_at",
            "meter_start_wh",
            "meter_stop_wh",
            "energy_kwh",
            "no_energy_reading",
            "stop_reason",
            "status",
            "ocpp_transaction_id",
            "signed_meter_values",
            "settlement",
            "duration_s",
            "payer",
            "payer_text",
        ]

    def get_duration_s(self, obj: ChargingSession) -> int:
        """Whole seconds from start to stop on the charger's clock; so far while it charges."""
        return duration_so_far_s(obj, timezone.now())

    @extend_schema_field(serializers.ChoiceField(choices=[p.value for p in Payer]))
    def get_payer(self, obj: ChargingSession) -> str:
        """Who paid: terminal (payment terminal), driver (driver account), guest (guest card),
        stay (a stay's access code), roaming (a roaming partner's card), own (one of your
        cards), unknown (the card is not known)."""
        return session_payer(obj).value

    def get_payer_text(self, obj: ChargingSession) -> str:
        """Who paid, in the portal's words ("Driver account", "Guest card", …)."""
        return PAYER_TEXT[session_payer(obj)]

    def get_energy_kwh(self, obj: ChargingSession) -> str | None:
        """kWh with 3 decimals; null while charging or when no reading was reported."""
        energy = kwh(obj.energy_wh)
        return None if energy is None else str(energy)

    def get_no_energy_reading(self, obj: ChargingSession) -> bool:
        """Finished without any energy reading from the charger: its energy is unknown."""
        return obj.no_reading

    @extend_schema_field(SignedMeterValuesSchema(allow_null=True))
    def get_signed_meter_values(self, obj: ChargingSession) -> dict | None:
        """The meter's signed readings (OCMF, docs/metering.md): status verified,
        invalid_signature, unknown_key, malformed or incomplete, start, end, public_key, values;
        null when the charger's meter does not sign."""
        if self.batch is not None:
            return self.batch["signed"][obj.pk]
        return signed_meter_values.call(obj)

    @extend_schema_field(SettlementSchema(allow_null=True))
    def get_settlement(self, obj: ChargingSession) -> dict | None:
        """The charge's settlement: held (its signed readings do not verify; nothing is captured
        or booked until they do or support decides), waived, pending, short (the guest's card
        was charged less than the cost) or settled; null when
        nothing is charged (docs/metering.md)."""
        if self.batch is not None:
            return self.batch["settlement"][obj.pk]
        return session_settlement.call(obj)


class SessionFilter(django_filters.FilterSet):
    station_id = django_filters.CharFilter(field_name="charger__station_id")
    id_tag = django_filters.CharFilter()
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = ChargingSession
        fields = ["station_id", "status", "id_tag", "connector_id"]


class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = SessionSerializer
    filterset_class = SessionFilter

    def get_queryset(self) -> QuerySet[ChargingSession]:
        # The payer's rows (card, guest session, terminal payment) and the stored charge in the
        # session's own query: a page costs no query per row (issue 51 items 3 and 8).
        return (
            sessions_for(self.request.user)
            .select_related(*SESSION_ROW_RELATED)
            .defer(*SESSION_ROW_DEFERRED)
            .order_by("-started_at", "-id")
        )

    def get_object(self) -> ChargingSession:
        try:
            return super().get_object()
        except (ValueError, TypeError):
            raise Http404 from None
