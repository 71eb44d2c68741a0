"""REST API of the reliability app (docs/reliability.md): exclusions, uptime and its exports."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice import outbound
from backoffice.api import TenantViewSetMixin, as_drf_error, as_utc
from backoffice.csv_export import csv_writer
from backoffice.models import Organization
from backoffice.pagination import query_bool, query_choice
from backoffice.tenancy import TenantSerializerMixin, readable, readable_organization_ids
from chargers.models import Charger
from chargers.web.selectors import charger_for_user, chargers_for

from . import faults, kpi_selectors, kpis, outages, reports, window
from .models import Alert, AlertRule, Exclusion
from .services import alerts, exclusions, recipients, uptime


def charger_or_error(user, station_id: str, field: str = "station_id") -> Charger:
    """The user's charger of that id; another organization's answers like one that does not exist."""
    charger = charger_for_user(user, station_id) if station_id else None
    if charger is None:
        raise ValidationError({field: "Unknown charger."})
    return charger


class ExclusionSerializer(serializers.ModelSerializer):
    station_id = serializers.CharField(max_length=48, source="charger.station_id")
    connector_id = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        allow_null=True,
        required=False,
        help_text="One of the charger's ports; null: every port of the charger.",
    )
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = Exclusion
        fields = [
            "id",
            "station_id",
            "connector_id",
            "start",
            "end",
            "reason",
            "note",
            "created_by",
            "created_at",
            "withdrawn_at",
        ]
        read_only_fields = ["id", "created_by", "created_at", "withdrawn_at"]

    def get_created_by(self, obj: Exclusion) -> str:
        user = obj.created_by
        return (user.email or user.username) if user else ""


class ExclusionViewSet(
    TenantViewSetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Exclusions from uptime (vandalism <= 10 days an incident, planned maintenance <= 72 h a
    year per port, grid power loss, natural disasters). Hosts withdraw one; only a staff user
    deletes one (DELETE). Both audited."""

    serializer_class = ExclusionSerializer

    def get_queryset(self):
        queryset = Exclusion.objects.filter(charger__in=chargers_for(self.request.user))
        station_id = self.request.query_params.get("station_id")
        if station_id:
            queryset = queryset.filter(charger__station_id=station_id)
        return queryset.select_related("charger__property", "created_by").order_by("-start", "-id")

    def organization_id_of(self, obj):
        return obj.charger.property.organization_id if obj.charger.property_id else None

    def perform_create(self, serializer):
        data = serializer.validated_data
        charger = charger_or_error(self.request.user, data["charger"]["station_id"])
        self.require_edit(charger.property.organization_id if charger.property_id else None)
        try:
            serializer.instance = exclusions.exclusion_create(
                charger=charger,
                connector_id=data.get("connector_id"),
                start=data["start"],
                end=data["end"],
                reason=data["reason"],
                note=data.get("note", ""),
                by=self.request.user,
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from None

    def perform_destroy(self, instance):
        if not self.request.user.is_staff:
            raise PermissionDenied("Only staff delete an exclusion; withdraw it instead.")
        exclusions.exclusion_delete(instance, by=self.request.user)

    # No body: withdrawing takes nothing but the exclusion in the URL (the audit row names who).
    @extend_schema(request=None, responses=ExclusionSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        exclusion = self.get_object()
        exclusions.exclusion_withdraw(exclusion, by=request.user)
        return Response(self.get_serializer(exclusion).data)


# -- uptime ---------------------------------------------------------------------------------------

MAX_PERIOD = timedelta(days=400)


def _moment(value: str, field: str, now: datetime) -> datetime:
    """A date or an ISO 8601 moment inside the reporting window; anything else is a 400 naming
    the field (a day that does not exist, year 1, year 9999)."""
    try:
        parsed = parse_datetime(value)
        day = parse_date(value) if parsed is None else None
    except ValueError:  # well formed but no such day or hour: 2026-02-30
        parsed = day = None
    if parsed is None and day is None:
        raise ValidationError({field: "Give a date (2026-01-31) or a date and time (ISO 8601)."})
    tz = timezone.get_current_timezone()
    if day is not None:
        moment = datetime(day.year, day.month, day.day, tzinfo=tz)
    else:
        assert parsed is not None
        if not timezone.is_aware(parsed):
            parsed = parsed.replace(tzinfo=tz)
        try:
            moment = as_utc(parsed)
        except (ValueError, OverflowError) as exc:
            raise ValidationError({field: str(exc)}) from exc
    refusal = window.outside(moment, now, tz)
    if refusal:
        raise ValidationError({field: refusal})
    return moment


def period_of(params) -> tuple[datetime, datetime]:
    """start and end from the query (default: this month so far), inside the reporting window."""
    now = timezone.now()
    local = timezone.localtime(now)
    start = (
        _moment(params["start"], "start", now)
        if params.get("start")
        else local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    end = _moment(params["end"], "end", now) if params.get("end") else now
    if end <= start:
        # A date is its midnight and the end is not included: say how to ask for one day.
        one_day = (start + timedelta(days=1)).date().isoformat() if end == start else ""
        raise ValidationError(
            {
                "end": f"The end must be after the start (a date means its midnight and the end "
                f"is not included: for that one day, use end={one_day})."
                if one_day
                else "The end must be after the start."
            }
        )
    if end - start > MAX_PERIOD:
        raise ValidationError({"end": "At most 400 days at a time."})
    return start, end


PROPERTY_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: "²" is a digit to str.isdigit


def chargers_asked(request) -> list[Charger]:
    """The user's chargers the query names (station_id, property); another organization's
    charger or property is not found (404); a property that is not a whole number is a 400."""
    queryset = chargers_for(request.user)
    station_id = request.query_params.get("station_id")
    property_id = request.query_params.get("property")
    if station_id:
        queryset = queryset.filter(station_id=station_id)
    if property_id:
        if not PROPERTY_ID.fullmatch(property_id):
            raise ValidationError({"property": "Give the property's id, a whole number."})
        queryset = queryset.filter(property_id=int(property_id))
    chargers = list(queryset.order_by("station_id"))
    if (station_id or property_id) and not chargers:
        raise NotFound("No such charger." if station_id else "No such property.")
    return chargers


def outage_json(outage: outages.Outage, mrec: list[faults.Fault] | None = None) -> dict:
    mrec = mrec or []
    return {
        "start": outage.start.isoformat(),
        "end": outage.end.isoformat(),
        "cause": outage.cause,
        "error_code": outage.error_code,
        "vendor_error_code": outage.vendor_code,
        "mrec_code": ";".join(f.code for f in mrec) or None,
        "mrec": [f.as_json() for f in mrec],
        "excluded": outage.excluded,
    }


def port_json(port: uptime.PortUptime, table: faults.FaultTable) -> dict:
    result = port.uptime
    vendor = port.charger.vendor
    return {
        "station_id": port.charger.station_id,
        "connector_id": port.connector_id,
        "uptime_percent": result.percent,
        "outage_seconds": round(result.outage_seconds, 3),
        "excluded_seconds": round(result.excluded_seconds, 3),
        "below_97": result.percent < uptime.TARGET_PERCENT,
        "outages": [
            outage_json(o, table.faults_of(o.error_code, o.vendor_code, vendor))
            for o in result.outages
        ],
    }


PERIOD_PARAMETERS = [
    OpenApiParameter("station_id", str, description="One charger (yours)."),
    OpenApiParameter("property", int, description="The chargers of one location (yours)."),
    OpenApiParameter(
        "start",
        str,
        description="Date or ISO 8601 moment in the reporting window; default: month start.",
    ),
    OpenApiParameter(
        "end", str, description="Date or ISO 8601 moment in the reporting window; default: now."
    ),
]


class MrecSerializer(serializers.Serializer):
    """A ChargeX MREC code with who may cause it (U EV user, C operator, S charging station,
    V vehicle), its class and where its row was read (docs/reliability.md, "Fault codes")."""

    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    responsibility = serializers.CharField()
    responsible = serializers.CharField()
    # "class" is a Python word: declared under its JSON name.
    vars()["class"] = serializers.CharField()
    source = serializers.CharField()
    secondary_source = serializers.BooleanField()


class OutageSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    cause = serializers.CharField()
    error_code = serializers.CharField(allow_null=True)
    vendor_error_code = serializers.CharField(allow_null=True)
    mrec_code = serializers.CharField(allow_null=True)
    mrec = MrecSerializer(many=True)
    excluded = serializers.BooleanField()


class PortUptimeSerializer(serializers.Serializer):
    station_id = serializers.CharField()
    connector_id = serializers.IntegerField()
    uptime_percent = serializers.FloatField()
    outage_seconds = serializers.FloatField()
    excluded_seconds = serializers.FloatField()
    below_97 = serializers.BooleanField()
    outages = OutageSerializer(many=True)


class AggregateUptimeSerializer(serializers.Serializer):
    ports = serializers.IntegerField()
    uptime_percent = serializers.FloatField()
    outage_seconds = serializers.FloatField()
    excluded_seconds = serializers.FloatField()
    ports_below_97 = serializers.IntegerField()


class UptimeSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    ports = PortUptimeSerializer(many=True)
    aggregate = AggregateUptimeSerializer()


class UptimeView(APIView):
    """GET /api/v1/uptime/?station_id=&property=&start=&end= : per port and in aggregate
    (docs/reliability.md)."""

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=UptimeSerializer)
    def get(self, request):
        start, end = period_of(request.query_params)
        now = timezone.now()
        ports = [
            port
            for charger in chargers_asked(request)
            for port in uptime.charger_uptime(charger, start, end, now)
        ]
        aggregate = uptime.aggregate(ports)
        table = faults.FaultTable()
        return Response(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "ports": [port_json(p, table) for p in ports],
                "aggregate": {
                    "ports": len(ports),
                    "uptime_percent": aggregate.percent,
                    "outage_seconds": round(aggregate.outage_seconds, 3),
                    "excluded_seconds": round(aggregate.excluded_seconds, 3),
                    "ports_below_97": sum(p.uptime.percent < uptime.TARGET_PERCENT for p in ports),
                },
            }
        )


class _CsvView(APIView):
    filename = ""

    def rows(self, chargers: list[Charger], start: datetime, end: datetime):
        raise NotImplementedError

    @extend_schema(
        parameters=PERIOD_PARAMETERS,
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        start, end = period_of(request.query_params)
        chargers = chargers_asked(request)
        buffer = io.StringIO()
        csv_writer(buffer).writerows(self.rows(chargers, start, end))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.filename}-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
        )
        return response


class NeviCsvView(_CsvView):
    """GET /api/v1/uptime/nevi.csv?start=&end= : a row per port with the 23 CFR 680.112 fields."""

    filename = "nevi-uptime"

    def rows(self, chargers, start, end):
        return reports.nevi_rows(chargers, start, end)


class CecCsvView(_CsvView):
    """GET /api/v1/uptime/cec.csv?start=&end=[&records=intervals] : CEC's semiannual summary per
    port, or its 15-minute interval records."""

    filename = "cec-uptime"

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("records", str, enum=["summary", "intervals"]),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        return super().get(request)

    def rows(self, chargers, start, end):
        if query_choice(self.request, "records", ("summary", "intervals")) == "intervals":
            return reports.cec_interval_rows(chargers, start, end)
        return reports.cec_rows(chargers, start, end)


# -- alerts ---------------------------------------------------------------------------------------


class AlertRuleSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    email = serializers.ListField(
        child=serializers.EmailField(),
        required=False,
        max_length=20,
        help_text="Addresses to email. Each gets alerts, one message each, once confirmed: a "
        "member's verified account email at once, any other by the link emailed to it.",
    )
    recipients = serializers.SerializerMethodField(
        help_text="Each address and whether it is confirmed (gets alerts) yet."
    )
    webhook_secret = serializers.CharField(
        max_length=200, required=False, allow_blank=True, write_only=True
    )
    has_webhook_secret = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "organization",
            "kind",
            "after_s",
            "threshold",
            "remediation",
            "remediation_max_per_day",
            "email",
            "recipients",
            "webhook_url",
            "webhook_secret",
            "has_webhook_secret",
            "enabled",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    owner_fields = ("organization",)

    def get_fields(self):
        fields = super().get_fields()
        # Any of the user's organizations is found; a viewer's write is then refused (403) by
        # the view, as everywhere, and another organization's is "does not exist" (400).
        request = self.context.get("request")
        if request is not None:
            fields["organization"].queryset = readable(Organization.objects.all(), request.user)
        return fields

    @extend_schema_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"email": {"type": "string"}, "confirmed": {"type": "boolean"}},
            },
        }
    )
    def get_recipients(self, obj: AlertRule) -> list[dict]:
        named = [e.strip().lower() for e in obj.email or [] if e and e.strip()]
        confirmed = recipients.confirmed_among(obj.organization_id, named)
        return [{"email": e, "confirmed": e in confirmed} for e in dict.fromkeys(named)]

    def get_has_webhook_secret(self, obj: AlertRule) -> bool:
        return bool(obj.webhook_secret)

    def validate_webhook_url(self, value: str) -> str:
        if value:
            try:  # the one outbound guard, at save; the client checks again at every connection
                outbound.check_url(value, schemes=("https",), unresolvable_ok=True)
            except outbound.OutboundBlocked as exc:
                raise serializers.ValidationError(exc.say("the alert receiver")) from None
        return value

    def validate(self, attrs):
        url = attrs.get("webhook_url", getattr(self.instance, "webhook_url", ""))
        secret = attrs.get("webhook_secret", getattr(self.instance, "webhook_secret", ""))
        if url and not secret:
            raise ValidationError({"webhook_secret": "A webhook needs a secret to sign with."})
        kind = attrs.get("kind", getattr(self.instance, "kind", ""))
        remediation = attrs.get("remediation", getattr(self.instance, "remediation", "none"))
        if remediation not in alerts.REMEDIES_BY_KIND.get(kind, ("none",)):
            allowed = ", ".join(alerts.REMEDIES_BY_KIND.get(kind, ("none",)))
            raise ValidationError({"remediation": f"First aid for {kind}: {allowed}."})
        return attrs


class AlertRuleViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    """Alert rules of an organization (docs/reliability.md, "Alerts"). The webhook secret is
    written, never shown."""

    serializer_class = AlertRuleSerializer

    def get_queryset(self):
        ids = readable_organization_ids(self.request.user)
        queryset = AlertRule.objects.all()
        if ids is not None:
            queryset = queryset.filter(organization_id__in=ids)
        return queryset.order_by("organization_id", "id")

    def perform_create(self, serializer):
        self.require_edit(serializer.validated_data["organization"].pk)
        rule = serializer.save()
        recipients.rule_recipients_saved(rule, site_url=self._site_url())

    def perform_update(self, serializer):
        super().perform_update(serializer)
        recipients.rule_recipients_saved(serializer.instance, site_url=self._site_url())

    def _site_url(self) -> str:
        return self.request.build_absolute_uri("/").rstrip("/")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("station_id", str),
            OpenApiParameter("open", bool, description="true: not cleared yet; false: cleared."),
        ]
    )
)
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """GET /api/v1/alerts/?station_id=&open=true : alerts of the user's chargers, and of their
    organizations where no charger is the subject (a halted firmware campaign, an access point's
    feed: `subject` names it)."""

    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        user = self.request.user
        organization_ids = readable_organization_ids(user)
        of_organizations = Q(charger__isnull=True)
        if organization_ids is not None:
            of_organizations &= Q(rule__organization_id__in=organization_ids)
        queryset = Alert.objects.filter(Q(charger__in=chargers_for(user)) | of_organizations)
        station_id = self.request.query_params.get("station_id")
        if station_id:
            queryset = queryset.filter(charger__station_id=station_id)
        still_open = query_bool(self.request, "open")
        if still_open is not None:
            queryset = queryset.filter(cleared_at__isnull=still_open)
        return queryset.select_related("charger").order_by("-opened_at", "-id")

    def get_serializer_class(self):
        return AlertSerializer


class RemediationSerializer(serializers.Serializer):
    action = serializers.CharField()
    sent_at = serializers.DateTimeField()
    result = serializers.CharField(allow_null=True)


class AlertSerializer(serializers.Serializer):
    """An alert as the webhook sends it (reliability.alerts.alert_json); the fields are declared
    for the published schema."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    station_id = serializers.CharField(allow_null=True)
    subject = serializers.CharField(allow_null=True)
    connector_id = serializers.IntegerField(allow_null=True)
    since = serializers.DateTimeField()
    opened_at = serializers.DateTimeField()
    cleared_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    mrec_code = serializers.CharField(allow_null=True)
    details = serializers.JSONField()
    remediation = RemediationSerializer(many=True)

    def to_representation(self, instance: Alert) -> dict:
        return alerts.alert_json(instance)


# -- success KPIs ---------------------------------------------------------------------------------


class KpiModeSerializer(serializers.Serializer):
    charge_attempts = serializers.IntegerField()
    power_delivered = serializers.IntegerField()
    completions = serializers.IntegerField()
    session_success_percent = serializers.FloatField(allow_null=True)


class KpiFiguresSerializer(serializers.Serializer):
    """ChargeX's success KPIs of a port, property or fleet (docs/reliability.md, "Success KPIs");
    a percentage is null when it has nothing to divide by."""

    charge_attempts = serializers.IntegerField()
    power_delivered = serializers.IntegerField()
    completions = serializers.IntegerField()
    in_progress = serializers.IntegerField(help_text="Attempts not judged yet (still running).")
    orphan_authorizes = serializers.IntegerField()
    orphan_remote_starts = serializers.IntegerField()
    session_success_percent = serializers.FloatField(allow_null=True)
    charge_start_success_percent = serializers.FloatField(allow_null=True)
    charge_end_success_percent = serializers.FloatField(allow_null=True)
    start_time_samples = serializers.IntegerField()
    start_time_p50_s = serializers.FloatField(allow_null=True)
    start_time_p90_s = serializers.FloatField(allow_null=True)
    start_time_p95_s = serializers.FloatField(allow_null=True)
    visits = serializers.IntegerField()
    first_attempt_successes = serializers.IntegerField()
    first_attempt_success_percent = serializers.FloatField(allow_null=True)
    visit_success_percent = serializers.FloatField(allow_null=True)
    by_mode = serializers.DictField(child=KpiModeSerializer())


class PortKpiSerializer(KpiFiguresSerializer):
    station_id = serializers.CharField()
    connector_id = serializers.IntegerField(help_text="0: an Authorize that named no port.")


class PropertyKpiSerializer(KpiFiguresSerializer):
    property_id = serializers.IntegerField(allow_null=True)
    property = serializers.CharField()


class FleetKpiSerializer(KpiFiguresSerializer):
    organization_id = serializers.IntegerField(allow_null=True)
    organization = serializers.CharField()


class KpisSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    rules = serializers.JSONField(help_text="The rules in force (windows in seconds).")
    fleets = FleetKpiSerializer(many=True)
    properties = PropertyKpiSerializer(many=True)
    ports = PortKpiSerializer(many=True)


def kpis_json(board: kpis.Board, chargers: list[Charger]) -> dict:
    """The board as the API gives it: every organization, property and port with attempts."""
    by_id = {c.pk: c for c in chargers}
    properties = {c.property_id: c.property for c in chargers if c.property_id}
    organizations = {p.organization_id: p.organization for p in properties.values()}
    ports = sorted(board.ports.items(), key=lambda kv: (by_id[kv[0][0]].station_id, kv[0][1]))
    return {
        "rules": board.rules.as_json(),
        "fleets": [
            {
                "organization_id": org,
                "organization": organizations[org].name if org in organizations else "",
                **tally.as_json(),
            }
            for org, tally in sorted(board.fleets.items(), key=lambda kv: kv[0] or 0)
        ],
        "properties": [
            {
                "property_id": prop,
                "property": properties[prop].name if prop in properties else "",
                **tally.as_json(),
            }
            for prop, tally in sorted(board.properties.items(), key=lambda kv: kv[0] or 0)
        ],
        "ports": [
            {
                "station_id": by_id[charger].station_id,
                "connector_id": connector,
                **tally.as_json(),
            }
            for (charger, connector), tally in ports
        ],
    }


class KpiView(APIView):
    """GET /api/v1/uptime/kpis/?station_id=&property=&start=&end= : ChargeX's success KPIs per
    port, property and fleet (docs/reliability.md, "Success KPIs")."""

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=KpisSerializer)
    def get(self, request):
        start, end = period_of(request.query_params)
        chargers = chargers_asked(request)
        board = kpi_selectors.board(chargers, start, end)
        return Response(
            {"start": start.isoformat(), "end": end.isoformat(), **kpis_json(board, chargers)}
        )
