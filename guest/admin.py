"""Read-only view of guest sessions for support agents (the key, the guest's credential, stays hidden)."""

from django.contrib import admin

from backoffice.admin_paging import DateHierarchyInRange

from .models import GuestSession


@admin.register(GuestSession)
class GuestSessionAdmin(DateHierarchyInRange, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "charger",
        "connector_id",
        "state",
        "failure_code",
        "email",
        "amount_held",
        "currency",
    )
    list_filter = ("state", "failure_code", "created_at")
    search_fields = ("charger__station_id", "email", "id_tag", "payment_reference")
    list_select_related = ("charger",)
    autocomplete_fields = ("charger", "token", "charging_session")
    exclude = ("key",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
