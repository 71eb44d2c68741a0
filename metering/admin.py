"""Admin of signed metering: meter keys (editable by staff) and signed readings (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import MeterKey, SignedReading


@admin.register(MeterKey)
class MeterKeyAdmin(admin.ModelAdmin):
    list_display = ("meter_serial", "charger", "signing_method", "registered_by", "updated")
    search_fields = ("meter_serial", "charger__station_id")
    list_filter = ("signing_method",)
    list_select_related = ("charger", "registered_by")
    raw_id_fields = ("charger", "registered_by")
    readonly_fields = ("public_key_hex", "created", "updated")
    exclude = ("public_key",)

    @admin.display(description="Public key (hex DER)")
    def public_key_hex(self, obj: MeterKey) -> str:
        return obj.public_key_hex if obj.public_key else ""


@admin.register(SignedReading)
class SignedReadingAdmin(admin.ModelAdmin):
    list_display = ("session", "nature", "value_wh", "time", "status", "reason", "meter_serial")
    search_fields = ("session__charger__station_id", "meter_serial", "session__transaction_id")
    list_filter = ("status", "nature")
    list_select_related = ("session", "session__charger")
    raw_id_fields = ("session",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
