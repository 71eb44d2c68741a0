from django.contrib import admin

from backoffice.admin_paging import ProbedDateHierarchy

from .models import (
    Alert,
    AlertDelivery,
    AlertRecipient,
    AlertRule,
    Exclusion,
    ExclusionAudit,
    FaultCode,
    FaultCodeMapping,
    PortEvent,
)
from .services import exclusions
from .services.recipients import rule_recipients_saved


@admin.register(PortEvent)
class PortEventAdmin(ProbedDateHierarchy, admin.ModelAdmin):
    list_display = [
        "at",
        "charger",
        "connector_id",
        "kind",
        "status",
        "error_code",
        "vendor_error_code",
    ]
    list_filter = ["kind"]
    search_fields = ["charger__station_id", "status", "error_code", "vendor_error_code"]
    raw_id_fields = ["charger"]
    date_hierarchy = "at"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the timeline is what the chargers said: read only


class ExclusionAuditInline(admin.TabularInline):
    model = ExclusionAudit
    extra = 0
    can_delete = False
    readonly_fields = ["action", "by", "at", "details"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Exclusion)
class ExclusionAdmin(admin.ModelAdmin):
    list_display = [
        "charger",
        "connector_id",
        "reason",
        "start",
        "end",
        "created_by",
        "withdrawn_at",
    ]
    list_filter = ["reason"]
    search_fields = ["charger__station_id", "note"]
    raw_id_fields = ["charger"]
    # Entered through the API or the portal (caps checked, audited); here they are read.
    readonly_fields = [
        "charger",
        "connector_id",
        "start",
        "end",
        "reason",
        "note",
        "created_by",
        "created_at",
        "withdrawn_at",
    ]
    inlines = [ExclusionAuditInline]

    def has_add_permission(self, request) -> bool:
        return False

    # A delete goes through the service, one exclusion at a time: each is audited (who, what).
    def delete_model(self, request, obj) -> None:
        exclusions.exclusion_delete(obj, by=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for exclusion in queryset.select_related("charger"):
            exclusions.exclusion_delete(exclusion, by=request.user)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["organization", "kind", "after_s", "remediation", "enabled"]
    list_filter = ["kind", "remediation", "enabled"]
    raw_id_fields = ["organization"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        rule_recipients_saved(obj, site_url=request.build_absolute_uri("/").rstrip("/"))


@admin.register(AlertRecipient)
class AlertRecipientAdmin(admin.ModelAdmin):
    """Who alert emails may go to: confirmed by their link, or a member's verified email."""

    list_display = ["email", "organization", "confirmed_at", "confirmed_how", "invited_at"]
    list_filter = ["confirmed_how"]
    search_fields = ["email"]
    raw_id_fields = ["organization"]
    # The link's key is the recipient's to click, not staff's.
    exclude = ["key"]
    readonly_fields = ["confirmed_at", "confirmed_how", "invited_at", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False  # rows come from the rules' addresses


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    readonly_fields = [
        "event",
        "channel",
        "target",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "next_try_at",
        "sent_at",
    ]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """The alerts and their delivery log (read only: they are what happened)."""

    list_display = ["opened_at", "kind", "charger", "connector_id", "mrec_code", "cleared_at"]
    list_filter = ["kind"]
    search_fields = ["charger__station_id", "mrec_code"]
    raw_id_fields = ["charger", "rule"]
    inlines = [AlertDeliveryInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class FaultCodeMappingInline(admin.TabularInline):
    model = FaultCodeMapping
    extra = 1


@admin.register(FaultCode)
class FaultCodeAdmin(admin.ModelAdmin):
    """ChargeX MREC codes and the vendor codes that map to them (editable)."""

    list_display = [
        "code",
        "name",
        "description",
        "responsibility",
        "fault_class",
        "source",
        "secondary_source",
    ]
    list_filter = ["secondary_source"]
    search_fields = ["code", "name", "mappings__vendor_error_code", "mappings__error_code"]
    inlines = [FaultCodeMappingInline]
