"""Admin of firmware releases and campaigns: the operator's actions call the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Campaign, CampaignTarget, FirmwareRelease, MaintenanceWindow, TargetEvent


@admin.register(FirmwareRelease)
class FirmwareReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "vendor", "model", "organization", "bad", "created_at"]
    list_filter = ["bad", "vendor"]
    list_select_related = ["organization"]
    search_fields = ["version", "vendor", "model"]
    raw_id_fields = ["organization"]
    actions = ["mark_bad"]

    @admin.action(description="Mark bad (hold it in every campaign)")
    def mark_bad(self, request: HttpRequest, queryset: QuerySet[FirmwareRelease]) -> None:
        held = sum(
            services.release_mark_bad(release_id=r.pk, reason="Marked bad in the admin.")
            for r in queryset
        )
        self.message_user(
            request, f"{queryset.count()} release(s) marked bad, {held} campaign(s) held."
        )


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = ["property", "start", "end"]
    list_select_related = ["property"]
    search_fields = ["property__name"]
    list_filter = ["start"]
    raw_id_fields = ["property"]


class TargetInline(admin.TabularInline):
    model = CampaignTarget
    extra = 0
    can_delete = False
    raw_id_fields = ["charger", "operation"]
    fields = ["position", "charger", "status", "method", "reason", "sent_at", "finished_at"]
    readonly_fields = [
        "position",
        "charger",
        "status",
        "method",
        "reason",
        "sent_at",
        "finished_at",
    ]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "release", "status", "status_reason", "started_at"]
    list_filter = ["status"]
    list_select_related = ["organization", "release"]
    search_fields = ["name"]
    raw_id_fields = ["organization", "release", "created_by"]
    readonly_fields = ["status", "status_reason", "started_at", "finished_at", "created_by"]
    inlines = [TargetInline]
    actions = ["start", "pause", "resume", "halt"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API or the portal, which select its chargers

    def _transition(self, request: HttpRequest, queryset: QuerySet[Campaign], action: str) -> None:
        for campaign in queryset:
            try:
                services.campaign_transition(campaign_id=campaign.pk, action=action)
            except services.CampaignRefused as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.WARNING)

    @admin.action(description="Start")
    def start(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._transition(request, queryset, "start")

    @admin.action(description="Pause")
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._transition(request, queryset, "pause")

    @admin.action(description="Resume")
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._transition(request, queryset, "resume")

    @admin.action(description="Halt")
    def halt(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._transition(request, queryset, "halt")


@admin.register(TargetEvent)
class TargetEventAdmin(admin.ModelAdmin):
    list_display = ["at", "target", "status", "details"]
    list_select_related = ["target"]
    search_fields = ["target__charger__station_id", "status"]
    list_filter = ["status"]
    raw_id_fields = ["target"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
