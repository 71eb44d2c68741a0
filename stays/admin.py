"""Admin for support agents: units and where chargers stand, reservations and the decisions they
led to, calendar feeds and PMS integrations with their sync state (seed 003 section 8)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from backoffice.admin_paging import DateHierarchyInRange

from . import services
from .models import (
    CalendarFeed,
    ChargerPlacement,
    Listing,
    PmsIntegration,
    Reservation,
    StayPolicy,
    Unit,
)
from .services.pms import integration_credentials_set, pms_sync


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["name", "property", "kind", "external_id", "chargers_here", "created_at"]
    search_fields = ["name", "external_id", "property__name", "chargers__station_id"]
    list_filter = ["kind"]
    list_select_related = ["property"]
    autocomplete_fields = ["property"]

    @admin.display(description="Chargers")
    def chargers_here(self, obj: Unit) -> str:
        # Chargers sit above stays in the layers: read through the reverse relation only.
        return ", ".join(obj.chargers.values_list("station_id", flat=True)) or "–"


@admin.register(StayPolicy)
class StayPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "property",
        "charging",
        "kwh_cap",
        "grace_before_minutes",
        "grace_after_minutes",
        "shared_chargers",
    ]
    search_fields = ["property__name"]
    list_filter = ["charging", "shared_chargers"]
    list_select_related = ["property"]
    autocomplete_fields = ["property"]


@admin.register(Reservation)
class ReservationAdmin(DateHierarchyInRange, admin.ModelAdmin):
    list_display = [
        "guest_name",
        "property",
        "unit",
        "check_in",
        "check_out",
        "status",
        "source",
        "access_code",
        "decision_count",
    ]
    search_fields = [
        "guest_name",
        "guest_email",
        "guest_phone",
        "access_code",
        "external_id",
        "property__name",
        "unit__name",
    ]
    list_filter = ["status", "source"]
    list_select_related = ["property", "unit"]
    autocomplete_fields = ["property", "unit", "calendar", "integration"]
    readonly_fields = [
        "access_code",
        "code_sent_at",
        "created_at",
        "updated_at",
        "access_decisions",
    ]
    date_hierarchy = "check_in"
    actions = ["send_code"]

    @admin.display(description="Decisions")
    def decision_count(self, obj: Reservation) -> int:
        return obj.decisions.count()

    @admin.display(description="Access decisions with this code")
    def access_decisions(self, obj: Reservation) -> str:
        rows = obj.decisions.order_by("-created_at")[:20]
        if not rows:
            return "No charger was started or refused with this code yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{} at {}: {} ({})</a></li>',
                (
                    (
                        reverse("admin:authorization_authorizationdecision_change", args=[d.pk]),
                        f"{d.created_at:%Y-%m-%d %H:%M}",
                        d.station_id,
                        d.status,
                        d.reason,
                    )
                    for d in rows
                ),
            ),
        )

    @admin.action(description="Email the access code to the guest (once)")
    def send_code(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        sent = sum(
            services.reservation_send_code(reservation_id=pk)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Sent {sent} access code email(s).", messages.SUCCESS)


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "property",
        "unit",
        "state",
        "last_synced_at",
        "bookings_seen",
        "blocked_seen",
        "cancelled_count",
        "last_error",
    ]
    search_fields = ["name", "url", "property__name", "unit__name"]
    list_filter = ["state"]
    list_select_related = ["property", "unit"]
    autocomplete_fields = ["property", "unit"]
    readonly_fields = [
        "state",
        "last_synced_at",
        "last_success_at",
        "last_error",
        "bookings_seen",
        "blocked_seen",
        "cancelled_count",
    ]
    actions = ["sync_now"]

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[CalendarFeed]) -> None:
        for feed in queryset:
            result = services.calendar_feed_sync(feed_id=feed.pk)
            level = messages.SUCCESS if result.ok else messages.ERROR
            text = (
                f"{feed}: {result.bookings} bookings, {result.blocked} blocked, {result.cancelled} cancelled"
                if result.ok
                else f"{feed}: {result.error}"
            )
            self.message_user(request, text, level)


class ListingInline(admin.TabularInline):
    model = Listing
    extra = 0
    fields = ["external_id", "name", "unit"]
    autocomplete_fields = ["unit"]


class PmsIntegrationForm(forms.ModelForm):
    credentials = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Write-only, stored encrypted. Guesty: {"client_id", "client_secret", "webhook_secret"}; '
        'Hospitable: {"token", "webhook_secret"}; Track: {"key", "secret"} (and the base URL above).',
    )

    class Meta:
        model = PmsIntegration
        fields = ["organization", "vendor", "name", "base_url"]


@admin.register(PmsIntegration)
class PmsIntegrationAdmin(admin.ModelAdmin):
    form = PmsIntegrationForm
    actions = ["sync_now"]
    list_display = [
        "__str__",
        "organization",
        "vendor",
        "state",
        "last_synced_at",
        "listings_count",
        "reservations_count",
        "unmapped",
        "last_error",
    ]
    search_fields = ["name", "organization__name"]
    list_filter = ["vendor", "state"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = [
        "state",
        "last_synced_at",
        "last_success_at",
        "cursor",
        "next_attempt_at",
        "failures",
        "last_error",
        "listings_count",
        "reservations_count",
    ]
    inlines = [ListingInline]

    @admin.display(description="Unmapped listings")
    def unmapped(self, obj: PmsIntegration) -> int:
        return obj.listings.filter(unit__isnull=True).count()

    def save_model(
        self, request: HttpRequest, obj: PmsIntegration, form: Any, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("credentials"):
            integration_credentials_set(
                integration=obj, credentials=form.cleaned_data["credentials"]
            )

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[PmsIntegration]) -> None:
        for integration in queryset:
            result = pms_sync(integration_id=integration.pk, force=True)
            text = (
                f"{integration}: {result.listings} listings, {result.reservations} reservations"
                if result.ok
                else f"{integration}: {result.error}"
            )
            self.message_user(request, text, messages.SUCCESS if result.ok else messages.ERROR)


@admin.register(ChargerPlacement)
class ChargerPlacementAdmin(admin.ModelAdmin):
    list_display = [
        "changed_at",
        "station_id",
        "from_property",
        "from_unit",
        "to_property",
        "to_unit",
        "changed_by",
    ]
    search_fields = ["station_id", "changed_by__email"]
    list_filter = ["changed_at"]
    list_select_related = ["from_property", "from_unit", "to_property", "to_unit", "changed_by"]
    autocomplete_fields = ["from_property", "from_unit", "to_property", "to_unit", "changed_by"]

    # The move log is history: read-only.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
