from django.contrib import admin

from .models import Membership, Organization, PendingTask, Property


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records nobody edits by hand: logs, decisions, money movements."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    list_filter = ["created_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    search_fields = ["user__username", "user__email", "organization__name"]
    list_filter = ["role"]
    list_select_related = ["user", "organization"]
    autocomplete_fields = ["user", "organization"]


@admin.register(Property)
class PropertyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "organization",
        "timezone",
        "currency",
        "roaming_enabled",
        "guest_charging_enabled",
    ]
    search_fields = ["name", "address", "organization__name"]
    list_filter = ["roaming_enabled", "guest_charging_enabled", "currency"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


@admin.register(PendingTask)
class PendingTaskAdmin(ReadOnlyAdmin):
    """Jobs the Celery broker did not take, waiting for `backoffice.pending_tasks_send`."""

    list_display = ["name", "args", "created_at", "attempts"]
    search_fields = ["name"]
    list_filter = ["name"]
    ordering = ["created_at"]
