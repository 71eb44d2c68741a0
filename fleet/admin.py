"""Admin of firmware releases and campaigns, configuration baselines and each charger's
application and drift: the operator's actions call the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from .baselines import rules as baseline_rules
from .baselines import services as baseline_services
from .campaigns import services
from .models import (
    Baseline,
    BaselineApplication,
    BaselineSetting,
    Campaign,
    CampaignTarget,
    FirmwareRelease,
    MaintenanceWindow,
    TargetEvent,
)


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


class SettingFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        protocol = getattr(self.instance, "protocol", "")
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            try:
                baseline_services.setting_check(protocol, data)
            except baseline_services.BaselineRefused as exc:
                form.add_error(None, str(exc))


class SettingInline(admin.TabularInline):
    model = BaselineSetting
    formset = SettingFormSet
    extra = 1


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "vendor", "model", "protocol", "version"]
    list_filter = ["protocol", "vendor"]
    list_select_related = ["organization"]
    search_fields = ["name", "vendor", "model"]
    raw_id_fields = ["organization"]
    readonly_fields = ["version"]
    inlines = [SettingInline]
    actions = ["apply"]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Settings saved: a new version, through the service (its checks, its one write).
        baseline = form.instance
        baseline_services.baseline_settings_replace(
            baseline_id=baseline.pk, items=baseline_services.setting_items(baseline.pk)
        )

    @admin.action(description="Apply to every charger of the baseline")
    def apply(self, request: HttpRequest, queryset: QuerySet[Baseline]) -> None:
        queued = sum(baseline_services.apply_request(baseline=b) for b in queryset)
        self.message_user(request, f"Queued for {queued} charger(s).")


@admin.register(BaselineApplication)
class BaselineApplicationAdmin(admin.ModelAdmin):
    """Each charger's last application and its drift (what it reported against the baseline)."""

    list_display = ["charger", "baseline", "version", "outcome", "drift", "applied_at"]
    list_filter = ["outcome"]
    list_select_related = ["charger", "baseline"]
    search_fields = ["charger__station_id", "baseline__name"]
    raw_id_fields = ["charger", "baseline"]
    readonly_fields = [f.name for f in BaselineApplication._meta.fields] + ["drift"]
    actions = ["reapply"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Drift")
    def drift(self, obj: BaselineApplication) -> str:
        found = baseline_services.charger_baseline(obj.charger)
        if found is None:
            return "–"
        drifted = [r for r in found.rows if r.state == baseline_rules.DRIFTED]
        return (
            "; ".join(f"{r.setting.label}: {r.reported} (not {r.setting.value})" for r in drifted)
            or "none"
        )

    @admin.action(description="Re-apply the baseline")
    def reapply(self, request: HttpRequest, queryset: QuerySet[BaselineApplication]) -> None:
        for application in queryset.select_related("baseline"):
            baseline_services.apply_request(
                baseline=application.baseline, charger_ids=[application.charger_id]
            )
        self.message_user(request, f"Queued for {queryset.count()} charger(s).")
