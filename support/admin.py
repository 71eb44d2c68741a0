"""Django admin for support agents: the ticket queue."""

from django.contrib import admin

from .models import Ticket


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = (
        "reference", "created_at", "status", "topic", "station_id", "property_display", "email", "prompt",
        "assigned_to",
    )
    list_filter = ("status", "topic", "source", "created_at")
    search_fields = ("reference", "station_id", "email", "name", "phone", "property_name", "message")
    list_select_related = ("property", "charger", "assigned_to")
    raw_id_fields = ("charger", "property", "assigned_to")
    readonly_fields = ("reference", "source", "client_ip", "created_at", "updated_at")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("reference", "status", "assigned_to", "topic", "source")}),
        ("Customer", {"fields": ("name", "email", "phone")}),
        ("Charger", {"fields": ("station_id", "charger", "property", "property_name", "occurred_at", "prompt")}),
        ("Message", {"fields": ("message", "agent_notes")}),
        ("Audit", {"fields": ("client_ip", "created_at", "updated_at")}),
    )
    actions = ["mark_open", "mark_resolved"]

    @admin.display(description="Property", ordering="property__name")
    def property_display(self, obj: Ticket) -> str:
        return obj.property.name if obj.property_id else obj.property_name

    @admin.action(description="Mark selected tickets as in progress")
    def mark_open(self, request, queryset) -> None:
        from .services import tickets_set_status

        tickets_set_status(ticket_ids=list(queryset.values_list("pk", flat=True)), status=Ticket.Status.OPEN)

    @admin.action(description="Mark selected tickets as resolved")
    def mark_resolved(self, request, queryset) -> None:
        from .services import tickets_set_status

        tickets_set_status(ticket_ids=list(queryset.values_list("pk", flat=True)), status=Ticket.Status.RESOLVED)
