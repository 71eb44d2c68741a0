from django.contrib import admin

from .models import ClaimedSession, DriverProfile, SavedCard


class SavedCardInline(admin.TabularInline):
    model = SavedCard
    extra = 0
    fields = ["brand", "last4", "exp_month", "exp_year", "is_default", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DriverProfile)
class DriverProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "customer_ref", "created_at"]
    search_fields = ["user__email", "customer_ref", "cards__last4"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["customer_ref", "created_at"]
    inlines = [SavedCardInline]


@admin.register(ClaimedSession)
class ClaimedSessionAdmin(admin.ModelAdmin):
    list_display = ["profile", "guest_session", "claimed_at"]
    search_fields = ["profile__user__email", "guest_session__charger__station_id"]
    list_select_related = ["profile__user", "guest_session"]
    raw_id_fields = ["profile", "guest_session"]
