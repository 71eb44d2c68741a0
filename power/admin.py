from django.contrib import admin

from .models import (
    AllocationSample,
    Circuit,
    ConnectorAllocation,
    ConnectorPower,
    SiteBudget,
    Uncontrollable,
    WaitingPeriod,
)


@admin.register(Uncontrollable)
class UncontrollableAdmin(admin.ModelAdmin):
    """Connectors that refused their power limit (connector 0: the charger's own profiles);
    deleting one lets the allocation count on it again (it is re-added at its next refusal)."""

    list_display = ("charger", "connector_id", "since", "reason")
    search_fields = ("charger__station_id",)
    list_select_related = ("charger",)
    raw_id_fields = ("charger",)
    readonly_fields = ("since", "reason")


@admin.register(SiteBudget)
class SiteBudgetAdmin(admin.ModelAdmin):
    list_display = ("property", "limit_a", "phases", "voltage", "policy", "live_limit_a")
    search_fields = ("property__name",)
    list_filter = ("policy", "phases")
    list_select_related = ("property",)
    raw_id_fields = ("property",)


@admin.register(Circuit)
class CircuitAdmin(admin.ModelAdmin):
    list_display = ("name", "property", "limit_a", "parent")
    search_fields = ("name", "property__name")
    list_filter = ("property",)
    list_select_related = ("property", "parent")
    raw_id_fields = ("property", "parent")


@admin.register(ConnectorPower)
class ConnectorPowerAdmin(admin.ModelAdmin):
    list_display = ("charger", "connector_id", "phases", "phase_rotation", "min_a", "max_a")
    search_fields = ("charger__station_id",)
    list_filter = ("phases",)
    list_select_related = ("charger",)
    raw_id_fields = ("charger", "circuit")


@admin.register(ConnectorAllocation)
class ConnectorAllocationAdmin(admin.ModelAdmin):
    list_display = ("charger", "connector_id", "limit_a", "measured_a", "waiting", "refused")
    search_fields = ("charger__station_id",)
    list_filter = ("waiting", "refused")
    list_select_related = ("charger",)
    raw_id_fields = ("charger", "property", "session")

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(AllocationSample)
class AllocationSampleAdmin(admin.ModelAdmin):
    list_display = ("property", "at", "budget_a", "allocated_a", "measured_a", "waiting")
    search_fields = ("property__name",)
    list_filter = ("property",)
    list_select_related = ("property",)
    raw_id_fields = ("property",)


@admin.register(WaitingPeriod)
class WaitingPeriodAdmin(admin.ModelAdmin):
    list_display = ("session", "started_at", "ended_at")
    search_fields = ("session__charger__station_id",)
    list_filter = ("ended_at",)
    list_select_related = ("session",)
    raw_id_fields = ("session",)
