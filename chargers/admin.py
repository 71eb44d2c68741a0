import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from backoffice.admin import ReadOnlyAdmin
from backoffice.admin_paging import (
    OCPP_ACTIONS,
    STOP_REASONS,
    DateHierarchyInRange,
    EstimatedCountPaginator,
    ProbedDateHierarchy,
    fixed_choices_filter,
)
from backoffice.tenancy import check_same_organization
from chargers.devices import commands
from chargers.models import (
    AuthorizationKeyChange,
    Charger,
    ChargerCertificate,
    ChargerDeviation,
    ChargerEvent,
    ChargerNotice,
    ChargerOperation,
    ChargerOperationStatus,
    ChargingProfile,
    ChargingSession,
    Command,
    Connector,
    ConnectorReservation,
    Deviation,
    DeviceVariable,
    MeterValue,
    OcppDeadLetter,
    OcppMessage,
    OcppServerProcess,
    OrphanStop,
    QuirkProfile,
    SecurityEvent,
    SignedSample,
    StatusEvent,
    TransactionEvent,
    VariableMonitor,
)
from chargers.ocpp.energy import kwh
from chargers.security import credentials
from chargers.state import quirks as quirks_state
from chargers.web.providers import port_faults, signed_meter_values

# The password generated on save travels to response_add/response_change on the request: shown
# once on a rendered page, never through a message cookie.
PASSWORD_ON_REQUEST = "_generated_ocpp_password"


class ConnectorInline(admin.TabularInline):
    model = Connector
    extra = 0
    readonly_fields = [
        "connector_id",
        "status",
        "error_code",
        "vendor_error_code",
        "fault_codes",
        "info",
        "status_timestamp",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Fault codes (ChargeX MREC)")
    def fault_codes(self, obj: Connector) -> str:
        """The codes open on this port with name, who may cause it, class and source (a row on
        a secondary source alone says so)."""
        # One read of the charger's faults for all its connectors (a new inline each request).
        cache = self.__dict__.setdefault("port_faults", {})
        if obj.charger_id not in cache:
            cache[obj.charger_id] = port_faults.call(obj.charger)
        faults = cache[obj.charger_id].get(obj.connector_id, [])
        return (
            "; ".join(
                f"{f['label']} (may be caused by: {f['responsible'] or 'not recorded'}; class: "
                f"{f['class'] or 'not recorded'}; {f['source_words']}"
                f"{', secondary source' if f['secondary_source'] else ''})"
                for f in faults
            )
            or "-"
        )


class ChargerDeviationInline(admin.TabularInline):
    """Deviations met on this charger that no quirk profile of it names (docs/quirks.md): what
    support reads to propose a profile (Quirk profiles)."""

    model = ChargerDeviation
    extra = 0
    can_delete = True  # support clears one once a profile covers it
    fields = [
        "code",
        "deviation_name",
        "detail",
        "count",
        "first_seen_at",
        "last_seen_at",
        "example",
    ]
    readonly_fields = [
        "code",
        "deviation_name",
        "detail",
        "count",
        "first_seen_at",
        "last_seen_at",
        "example",
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Deviation")
    def deviation_name(self, obj: ChargerDeviation) -> str:
        names = self.__dict__.setdefault(
            "names", dict(Deviation.objects.values_list("code", "name"))
        )
        return names.get(obj.code, "not a named deviation yet")


class ChargerAdminForm(forms.ModelForm):
    ocpp_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        min_length=16,
        max_length=40,
        help_text="Set a new HTTP Basic password for this charger (16-40 characters). Leave empty to keep it.",
    )
    remove_password = forms.BooleanField(
        required=False,
        help_text="Remove the password (only for security profile 0 or 3, which do not use it).",
    )

    class Meta:
        model = Charger
        fields = "__all__"  # noqa: DJ007 - admin forms edit every field the ModelAdmin shows

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        prop = data.get("property")
        check_same_organization(
            prop.organization_id if prop else None,
            data.get("token_groups"),
            field="token_groups",
            message="Token groups must belong to the charger's organization.",
        )
        if data.get("remove_password") and data.get("security_profile") in (
            Charger.SecurityProfile.BASIC_AUTH,
            Charger.SecurityProfile.TLS_BASIC_AUTH,
        ):
            self.add_error(
                "remove_password", "Profiles 1 and 2 authenticate with the password: keep it."
            )
        return data

    def save(self, commit: bool = True) -> Charger:
        charger = super().save(commit=False)
        self.generated_password: str | None = None
        if self.cleaned_data.get("remove_password"):
            charger.set_ocpp_password(None)
        elif self.cleaned_data.get("ocpp_password"):
            charger.set_ocpp_password(self.cleaned_data["ocpp_password"])
        elif not charger.ocpp_password_hash and charger.security_profile in (
            Charger.SecurityProfile.BASIC_AUTH,
            Charger.SecurityProfile.TLS_BASIC_AUTH,
        ):
            # A charger that authenticates with a password gets one: shown once after saving.
            self.generated_password = credentials.generate_password()
            charger.set_ocpp_password(self.generated_password)
        if commit:
            charger.save()
            self.save_m2m()
        return charger


class ConnectionFilter(admin.SimpleListFilter):
    """Online / offline as the portal badge decides it (each charger's own heartbeat interval)."""

    title = "connection"
    parameter_name = "connection"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("online", "Online"), ("offline", "Offline")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Charger]) -> QuerySet[Charger]:
        if self.value() not in ("online", "offline"):
            return queryset
        now = timezone.now()
        connected = (
            queryset.select_related(None)  # "Show counts" passes the list's select_related
            .exclude(connection_id="")
            .exclude(last_seen_at=None)
            .only("pk", "connection_id", "last_seen_at", "heartbeat_interval")
        )
        online = [c.pk for c in connected if c.is_online(now)]
        return (
            queryset.filter(pk__in=online)
            if self.value() == "online"
            else queryset.exclude(pk__in=online)
        )


@admin.register(Charger)
class ChargerAdmin(admin.ModelAdmin):
    form = ChargerAdminForm
    list_display = [
        "station_id",
        "property",
        "online",
        "last_seen_at",
        "security_profile",
        "access_mode",
        "ownership",
        "license_valid_until",
        "out_of_order",
        "vendor",
        "model",
        "firmware_version",
        "ocpp_version",
    ]
    search_fields = ["station_id", "name", "serial_number", "vendor", "model", "property__name"]
    list_filter = [
        ConnectionFilter,
        "ocpp_version",
        "security_profile",
        "access_mode",
        "ownership",
        "out_of_order",
        "registration_status",
        "property__organization",
    ]
    list_select_related = ["property"]
    autocomplete_fields = ["property"]
    filter_horizontal = ["token_groups"]
    readonly_fields = [
        "elsewhere",
        "vendor",
        "model",
        "serial_number",
        "firmware_version",
        "connection_id",
        "connected_at",
        "disconnected_at",
        "last_seen_at",
        "last_heartbeat_at",
        "last_boot_at",
        "security_profile_pending",
        "ocpp_password_set_at",
        "ocpp_version",
        "implausible_readings",
        "implausible_reading",
        "implausible_reading_at",
    ]
    inlines = [ConnectorInline, ChargerDeviationInline]

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list:
        # A charger being added has met nothing yet: no deviations section (and no formset the
        # add form would have to carry).
        return self.inlines if obj is not None else [ConnectorInline]

    actions = [
        "remote_start",
        "remote_stop",
        "soft_reset",
        "hard_reset",
        "unlock_connector",
        "clear_cache",
        "push_local_list",
    ]

    @admin.display(description="Online", boolean=True)
    def online(self, obj: Charger) -> bool:
        return obj.is_online()

    @admin.display(description="See also")
    def elsewhere(self, obj: Charger) -> str:
        """Where an agent goes next: the charger's Logs, its sessions and the host's view."""
        if obj.pk is None:
            return "–"
        links = [
            ("Logs", reverse("chargers:charger-logs", args=[obj.station_id])),
            ("Sessions", reverse("chargers:charger-sessions", args=[obj.station_id])),
            ("Portal view", reverse("chargers:charger-detail", args=[obj.station_id])),
        ]
        return format_html_join(
            " · ", '<a href="{}">{}</a>', ((url, label) for label, url in links)
        )

    def save_model(self, request: HttpRequest, obj: Charger, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        setattr(request, PASSWORD_ON_REQUEST, getattr(form, "generated_password", None))

    def _password_once(self, request: HttpRequest, obj: Charger) -> TemplateResponse:
        # Rendered, not redirected: the password must not travel through a message cookie.
        response = TemplateResponse(
            request,
            "admin/chargers/charger/password_once.html",
            {
                **self.admin_site.each_context(request),
                "charger": obj,
                "password": getattr(request, PASSWORD_ON_REQUEST),
                "opts": self.model._meta,
                "title": f"OCPP password of {obj.station_id}",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    def response_add(
        self, request: HttpRequest, obj: Charger, post_url_continue: str | None = None
    ) -> HttpResponse:
        if getattr(request, PASSWORD_ON_REQUEST, None):
            return self._password_once(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Charger) -> HttpResponse:
        if getattr(request, PASSWORD_ON_REQUEST, None):
            return self._password_once(request, obj)
        return super().response_change(request, obj)

    def _send(
        self,
        request: HttpRequest,
        queryset: QuerySet[Charger],
        action: str,
        payload_for: Callable[[Charger], dict[str, Any] | None],
    ) -> None:
        for charger in queryset:
            payload = payload_for(charger)
            if payload is None:
                self.message_user(
                    request, f"{charger}: nothing to send for {action}.", messages.WARNING
                )
                continue
            try:
                command = commands.send_command_sync(
                    charger, action, payload, source="admin", user_id=request.user.pk, once=True
                )
            except commands.AlreadyPending as exc:
                self.message_user(request, f"{charger}: {exc.told(action)}", messages.WARNING)
            except commands.ChargerOffline:
                self.message_user(
                    request, f"{charger}: offline, {action} not sent.", messages.ERROR
                )
            except commands.CommandTimeout as exc:
                self.message_user(request, f"{charger}: {exc.told(action)}", messages.ERROR)
            except commands.InvalidCommand as exc:
                self.message_user(request, f"{charger}: {exc.error.description}", messages.ERROR)
            else:
                level = (
                    messages.SUCCESS
                    if command.result_status in ("Accepted", "Unlocked")
                    else messages.WARNING
                )
                self.message_user(
                    request,
                    f"{charger}: {action} -> {command.result_status or command.status}",
                    level,
                )

    @admin.action(description="Remote start on connector 1 (operator override token)")
    def remote_start(self, request: HttpRequest, queryset: QuerySet[Charger]) -> None:
        # Through the authorization engine with an operator token valid at this charger; the last
        # session's idTag was a dead guest pass the charger accepted and then ended at 0 Wh.
        from chargers.devices.remote import operator_remote_start_sync

        for charger in queryset:
            try:
                token, decision, command = operator_remote_start_sync(
                    charger, connector_id=1, user_id=request.user.pk, once=True
                )
            except commands.AlreadyPending as exc:
                self.message_user(
                    request, f"{charger}: {exc.told('RemoteStartTransaction')}", messages.WARNING
                )
                continue
            except ValueError as exc:
                self.message_user(request, f"{charger}: {exc}", messages.ERROR)
                continue
            except commands.ChargerOffline:
                self.message_user(
                    request, f"{charger}: offline, RemoteStartTransaction not sent.", messages.ERROR
                )
                continue
            except commands.CommandTimeout as exc:
                self.message_user(
                    request, f"{charger}: {exc.told('RemoteStartTransaction')}", messages.ERROR
                )
                continue
            if command is None:
                self.message_user(
                    request,
                    f"{charger}: {token.uid} refused ({decision.reason}): {decision.message}",
                    messages.ERROR,
                )
                continue
            level = messages.SUCCESS if command.result_status == "Accepted" else messages.WARNING
            self.message_user(
                request,
                f"{charger}: RemoteStartTransaction with {token.uid} -> {command.result_status or command.status}",
                level,
            )

    @admin.action(description="Remote stop the active session")
    def remote_stop(self, request: HttpRequest, queryset: QuerySet[Charger]) -> None:
        def payload(charger: Charger) -> dict[str, Any] | None:
            active = (
                charger.sessions.filter(status=ChargingSession.Status.ACTIVE)
                .order_by("-started_at")
                .first()
            )
            return {"transactionId": active.transaction_id} if active else None

        self._send(request, queryset, "RemoteStopTransaction", payload)

    @admin.action(description="Reset (soft)")
    def soft_reset(self, request: HttpRequest, queryset: QuerySet[Charger]) -> None:
        self._send(request, queryset, "Reset", lambda c: {"type": "Soft"})

    @admin.action(description="Reset (hard)")
    def hard_reset(self, request: HttpRequest, queryset: QuerySet[Charger]) -> None:
        self._send(request, queryset, "Reset", lambda c: {"type": "Hard"})

    @admin.action(description="Unlock connector 1")
    def unlock_connector(self, request: HttpRequest, queryset: QuerySet[Charger]) -> None:
        self._send(request, queryset, "UnlockConnector", lambda c: {"connectorId": 1})

    @admin.action(description="Clear authorization cache")
    def clear_cache(self, request: HttpRequest, queryset: QuerySet[Charger]) -> None:
        self._send(request, queryset, "ClearCache", lambda c: {})

    @admin.action(description="Push local authorization list (full)")
    def push_local_list(self, request: HttpRequest, queryset: QuerySet[Charger]) -> None:
        from chargers.devices.local_list import local_list_push_sync

        for charger in queryset:
            try:
                command = local_list_push_sync(
                    charger, user_id=request.user.pk, full=True, source="admin"
                )
            except (
                commands.ChargerOffline,
                commands.CommandTimeout,
                commands.InvalidCommand,
            ) as exc:
                self.message_user(
                    request, f"{charger}: local list not pushed ({exc}).", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    f"{charger}: SendLocalList -> {command.result_status or command.status}",
                )


@admin.register(OcppMessage)
class OcppMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "timestamp",
        "charger",
        "direction",
        "message_type",
        "action",
        "unique_id",
        "id_tag",
        "escaped",
        "violation",
    ]
    # Fixed actions: the default filter reads SELECT DISTINCT action over the whole log on every page.
    list_filter = [
        "direction",
        "message_type",
        "escaped",
        fixed_choices_filter("action", "action", OCPP_ACTIONS),
    ]
    search_fields = [
        "charger__station_id",
        "id_tag",
    ]  # for the help text; the lookups are get_search_results'
    search_help_text = (
        "A Station ID or an idTag, exactly (the log has millions of rows: indexed lookups only)."
    )
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is slow
    paginator = EstimatedCountPaginator

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OcppMessage], search_term: str
    ) -> tuple[QuerySet[OcppMessage], bool]:
        # A substring search over 10M rows is a sequential scan (3.9 s at 660k rows): match a
        # charger's Station ID (index charger, -id) or else an idTag (index id_tag, -id), exactly.
        term = search_term.strip()
        if not term:
            return queryset, False
        charger_ids = list(Charger.objects.filter(station_id=term).values_list("pk", flat=True))
        if charger_ids:
            return queryset.filter(charger_id__in=charger_ids), False
        return queryset.filter(id_tag=term), False


def charger_search_term(term: str) -> tuple[str, int | None]:
    """Split what an agent types into a station id and a connector: "DEMO-003 #2", "DEMO-003#2"
    and "DEMO-003/2" are connector 2 of DEMO-003; anything else is the station id alone."""
    match = re.fullmatch(r"(.+?)\s*[#/]\s*(\d{1,3})", term.strip())
    if match:
        return match.group(1), int(match.group(2))
    return term.strip(), None


@admin.register(ChargingSession)
class ChargingSessionAdmin(ProbedDateHierarchy, admin.ModelAdmin):
    list_display = [
        "label",
        "transaction_id",
        "id_tag",
        "started_at",
        "stopped_at",
        "energy",
        "status",
        "stop_reason",
    ]
    list_filter = ["status", fixed_choices_filter("stop_reason", "stop reason", STOP_REASONS)]
    search_fields = ["transaction_id", "ocpp_transaction_id", "id_tag", "charger__station_id"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger", "token"]
    readonly_fields = ["signed_readings"]
    date_hierarchy = "started_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # millions of sessions: no COUNT(*) per page
    search_help_text = (
        "A Station ID (DEMO-003), a Station ID and connector (DEMO-003 #2), a transaction id or an "
        "idTag, exactly (indexed lookups over millions of rows)."
    )

    @admin.display(description="Session", ordering="started_at")
    def label(self, obj: ChargingSession) -> str:
        return str(obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ChargingSession], search_term: str
    ) -> tuple[QuerySet[ChargingSession], bool]:
        # Substring matches cast and scan every session (4.6 s at 1M): exact, indexed lookups.
        term = search_term.strip()
        if not term:
            return queryset, False
        station, connector = charger_search_term(term)
        charger_ids = list(Charger.objects.filter(station_id=station).values_list("pk", flat=True))
        if not charger_ids:  # typed in another case (a few thousand chargers: no index needed)
            charger_ids = list(
                Charger.objects.filter(station_id__iexact=station).values_list("pk", flat=True)
            )
        if charger_ids:
            # A station id finds that charger's sessions only (not an idTag that looks alike).
            found = queryset.filter(charger_id__in=charger_ids)
            return (found.filter(connector_id=connector) if connector else found), False
        match = Q(id_tag=term) | Q(ocpp_transaction_id=term)
        if term.isdecimal() and int(term) < 2**31:
            match |= Q(transaction_id=int(term))
        return queryset.filter(match), False

    @admin.display(description="Energy (kWh)")
    def energy(self, obj: ChargingSession) -> str:
        if obj.no_reading:
            return "no reading reported"
        return "" if obj.energy_wh is None else format_html("{}", str(kwh(obj.energy_wh)))

    @admin.display(description="Signed by the meter")
    def signed_readings(self, obj: ChargingSession) -> str:
        """The verification result of the meter's signed readings (metering, docs/metering.md)."""
        data = signed_meter_values.call(obj) if obj.pk else None
        if data is None:
            return "No signed readings (the charger's meter has no registered key)"
        text = format_html("{}", data["text"])
        if data.get("reason"):
            text = format_html("{} ({})", text, data["reason"])
        if data.get("transparency_url"):
            text = format_html(
                '{} · <a href="{}">transparency data</a>', text, data["transparency_url"]
            )
        readings = reverse("admin:metering_signedreading_changelist")
        return format_html(
            '{} · <a href="{}?session__id__exact={}">each reading</a>', text, readings, obj.pk
        )


@admin.register(MeterValue)
class MeterValueAdmin(ReadOnlyAdmin):
    list_display = [
        "timestamp",
        "charger",
        "connector_id",
        "session",
        "measurand",
        "phase",
        "value",
        "unit",
    ]
    list_filter = ["measurand"]
    search_fields = ["charger__station_id"]
    list_select_related = ["charger", "session__charger"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(SignedSample)
class SignedSampleAdmin(ReadOnlyAdmin):
    """Signed values of 1.6 MeterValues as received (metering shows what they verify to)."""

    list_display = ["timestamp", "charger", "connector_id", "transaction_id", "context"]
    list_filter = ["context"]
    search_fields = ["charger__station_id", "=transaction_id"]
    list_select_related = ["charger"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(OrphanStop)
class OrphanStopAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "charger",
        "transaction_id",
        "id_tag",
        "stopped_at",
        "meter_stop_wh",
        "reason",
        "reviewed",
    ]
    list_filter = ["reviewed", "reason"]
    search_fields = ["charger__station_id", "transaction_id", "id_tag"]
    list_select_related = ["charger"]
    readonly_fields = [
        "charger",
        "transaction_id",
        "id_tag",
        "stopped_at",
        "meter_stop_wh",
        "reason",
        "payload",
        "received_at",
    ]


@admin.register(Command)
class CommandAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "charger", "action", "status", "result", "source", "requested_by"]
    list_filter = ["status", "action", "source"]
    search_fields = ["charger__station_id", "unique_id"]
    list_select_related = ["charger", "requested_by"]

    @admin.display(description="Answer")
    def result(self, obj: Command) -> str:
        return obj.result_status


@admin.register(StatusEvent)
class StatusEventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "charger", "connector_id", "status", "error_code", "received_at"]
    list_filter = ["status", "error_code"]
    search_fields = ["charger__station_id"]
    list_select_related = ["charger"]


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "charger", "event_type", "critical", "source", "tech_info"]
    search_fields = ["charger__station_id", "event_type", "tech_info"]
    list_filter = ["critical", "source", "event_type"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]


@admin.register(AuthorizationKeyChange)
class AuthorizationKeyChangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "charger", "status", "resolved_at"]
    search_fields = ["charger__station_id"]
    list_filter = ["status"]
    list_select_related = ["charger"]
    exclude = ["password_hash"]


@admin.register(ChargerCertificate)
class ChargerCertificateAdmin(admin.ModelAdmin):
    list_display = [
        "issued_at",
        "charger",
        "subject",
        "serial_number",
        "not_after",
        "delivery",
        "revoked_at",
    ]
    search_fields = ["charger__station_id", "serial_number", "fingerprint_sha256", "subject"]
    list_filter = ["delivery"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger", "command"]
    readonly_fields = [
        "charger",
        "serial_number",
        "fingerprint_sha256",
        "subject",
        "not_before",
        "not_after",
        "certificate_pem",
        "command",
        "delivery",
        "issued_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke: the certificate no longer connects (security profile 3)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ChargerCertificate]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} certificate(s) revoked.", messages.SUCCESS)


class ChargerOperationStatusInline(admin.TabularInline):
    model = ChargerOperationStatus
    extra = 0
    readonly_fields = ["status", "source", "received_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChargerOperation)
class ChargerOperationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "charger", "kind", "request_id", "status", "updated_at"]
    search_fields = ["charger__station_id"]
    list_filter = ["kind", "status"]
    list_select_related = ["charger"]
    inlines = [ChargerOperationStatusInline]


@admin.register(OcppDeadLetter)
class OcppDeadLetterAdmin(DateHierarchyInRange, ReadOnlyAdmin):
    """Log rows and journal entries the database refused: kept for support, never retried."""

    list_display = ["created_at", "kind", "charger_id", "received_at", "error"]
    list_filter = ["kind"]
    search_fields = ["charger_id", "error", "row"]
    date_hierarchy = "created_at"


@admin.register(OcppServerProcess)
class OcppServerProcessAdmin(ReadOnlyAdmin):
    """Running server processes holding charger sockets (heartbeat every 15 s)."""

    list_display = ["key", "hostname", "pid", "started_at", "heartbeat_at"]
    list_filter = ["hostname"]
    search_fields = ["key", "hostname"]


# -- OCPP 2.0.1 (docs/ocpp.md, "OCPP 2.0.1") ---------------------------------------------------------


@admin.register(TransactionEvent)
class TransactionEventAdmin(ReadOnlyAdmin):
    list_display = [
        "timestamp",
        "charger",
        "ocpp_transaction_id",
        "seq_no",
        "event_type",
        "trigger_reason",
        "offline",
        "session",
    ]
    list_filter = ["event_type", "trigger_reason", "offline"]
    search_fields = ["charger__station_id", "ocpp_transaction_id"]
    list_select_related = ["charger", "session__charger"]
    autocomplete_fields = ["charger", "session"]
    show_full_result_count = False


@admin.register(DeviceVariable)
class DeviceVariableAdmin(ReadOnlyAdmin):
    list_display = [
        "charger",
        "component",
        "component_instance",
        "evse_id",
        "connector_id",
        "variable",
        "variable_instance",
        "attribute_type",
        "value",
        "mutability",
        "standardized",
        "updated_at",
    ]
    list_filter = ["standardized", "attribute_type", "mutability"]
    search_fields = ["charger__station_id", "component", "variable"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]


@admin.register(ChargerEvent)
class ChargerEventAdmin(ReadOnlyAdmin):
    list_display = [
        "timestamp",
        "charger",
        "component",
        "variable",
        "actual_value",
        "trigger",
        "event_notification_type",
        "cleared",
    ]
    list_filter = ["trigger", "event_notification_type"]
    search_fields = ["charger__station_id", "component", "variable"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]


# What chargers hold or reported (reservations, profiles, monitors, notices): made through the
# portal, the API or the charger, so read-only here like the rest of the OCPP record.
@admin.register(ConnectorReservation)
class ConnectorReservationAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "charger",
        "connector_id",
        "reservation_id",
        "id_tag",
        "expires_at",
        "status",
        "charger_answer",
        "source",
    ]
    list_filter = ["status", "source"]
    search_fields = ["charger__station_id", "id_tag", "group_id_tag"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger", "session", "requested_by"]


@admin.register(ChargingProfile)
class ChargingProfileAdmin(ReadOnlyAdmin):
    list_display = [
        "charger",
        "evse_id",
        "profile_id",
        "purpose",
        "stack_level",
        "kind",
        "status",
        "source",
        "updated_at",
    ]
    list_filter = ["status", "purpose", "source"]
    search_fields = ["charger__station_id", "transaction_id"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]


@admin.register(VariableMonitor)
class VariableMonitorAdmin(ReadOnlyAdmin):
    list_display = [
        "charger",
        "monitor_id",
        "component",
        "variable",
        "type",
        "value",
        "severity",
        "updated_at",
    ]
    list_filter = ["type", "severity"]
    search_fields = ["charger__station_id", "component", "variable"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]


@admin.register(ChargerNotice)
class ChargerNoticeAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "charger", "action", "evse_id", "summary"]
    list_filter = ["action"]
    search_fields = ["charger__station_id", "summary"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]


from chargers.proxy import admin as _proxy_admin  # noqa: E402, F401  (registers Backoffice)

# -- quirk profiles (docs/quirks.md) --------------------------------------------------------------


@admin.register(Deviation)
class DeviationAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "source_url"]
    search_fields = ["code", "name", "description"]
    list_filter = ["profiles"]
    list_select_related = False
    readonly_fields = ["code"]  # the code is what the product knows (chargers.ocpp.quirks)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a new kind needs code that handles it; edit the words and evidence

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QuirkProfile)
class QuirkProfileAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "vendor",
        "model_prefix",
        "firmware_range",
        "deviation_codes",
        "enabled",
        "updated_at",
    ]
    search_fields = ["name", "vendor", "model_prefix", "notes"]
    list_filter = ["enabled", "deviations"]
    list_select_related = False
    filter_horizontal = ["deviations"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request: HttpRequest) -> QuerySet[QuirkProfile]:
        return super().get_queryset(request).prefetch_related("deviations")

    @admin.display(description="Firmware")
    def firmware_range(self, obj: QuirkProfile) -> str:
        parts = []
        if obj.firmware_prefix:
            parts.append(f"{obj.firmware_prefix}*")
        if obj.firmware_min or obj.firmware_max:
            parts.append(f"{obj.firmware_min or '…'} to {obj.firmware_max or '…'}")
        return ", ".join(parts) or "any"

    @admin.display(description="Deviations")
    def deviation_codes(self, obj: QuirkProfile) -> str:
        return ", ".join(d.code for d in obj.deviations.all())

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        quirks_state.forget()  # this process sees the edit at once, the others within the cache

    def delete_model(self, request: HttpRequest, obj: QuirkProfile) -> None:
        super().delete_model(request, obj)
        quirks_state.forget()


@admin.register(ChargerDeviation)
class ChargerDeviationAdmin(ReadOnlyAdmin):
    """Every charger's unnamed deviations, to see which model shows one across the fleet."""

    list_display = ["charger", "code", "count", "first_seen_at", "last_seen_at", "charger_model"]
    search_fields = ["charger__station_id", "charger__vendor", "charger__model", "code"]
    list_filter = ["code"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]

    @admin.display(description="Vendor / model / firmware")
    def charger_model(self, obj: ChargerDeviation) -> str:
        c = obj.charger
        return f"{c.vendor} / {c.model} / {c.firmware_version}"
