"""Django admin for support agents: partners, the OCPI log, the outbox, tokens, commands, CDRs,
parking places, and the PTPs' terminals, terminal payments and financial advice confirmations."""

from typing import Any

from django.contrib import admin, messages
from django.utils.html import format_html

from backoffice.admin_paging import DateHierarchyInRange
from billing.admin_money import CurrencyAmountsAdmin

from . import access_points, emsp_cdrs, emsp_driving
from .models import (
    AccessPointFeed,
    Cdr,
    Delivery,
    EmspIdentity,
    EvseProfile,
    FinancialAdviceConfirmation,
    HubParty,
    LocationProfile,
    OcpiLog,
    ParkingPlace,
    Partner,
    PartnerCdr,
    PartnerCommand,
    PartnerLocation,
    PartnerSession,
    PartnerTariff,
    PushedToken,
    RemoteCommand,
    Terminal,
    TerminalActivation,
    TerminalPayment,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AccessPointFeed)
class AccessPointFeedAdmin(admin.ModelAdmin):
    """AFIR feeds to national access points. The token is never shown; switching a feed on and
    changing its address go through the portal API (the outbound guard and the full sync)."""

    list_display = ["organization", "country", "protocol", "enabled", "endpoint_url", "updated_at"]
    list_filter = ["country", "protocol", "enabled"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "country"]
    exclude = ["token"]
    readonly_fields = [
        "organization",
        "country",
        "protocol",
        "enabled",
        "endpoint_url",
        "party_id",
        "partner",
        "freshness",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.display(description="Freshness and last error")
    def freshness(self, obj: AccessPointFeed) -> str:
        state = access_points.feed_state(obj)
        age = "up to date" if not state.waiting else f"oldest change waiting {state.freshness_s} s"
        return f"{state.waiting} waiting, {age}. {state.last_error_words}".strip()


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "party",
        "role",
        "state",
        "organization",
        "last_push_at",
        "last_pull_at",
        "last_error",
    ]
    list_filter = ["state", "role"]
    search_fields = ["name", "party_id", "country_code"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization", "msp"]
    # Tokens are never shown nor edited here: register or unregister through the portal.
    exclude = ["token_a_hash", "incoming_token_hash", "outgoing_token"]
    readonly_fields = [
        "state",
        "version",
        "endpoints",
        "business_details",
        "registered_at",
        "last_push_at",
        "last_pull_at",
        "last_error",
        "last_error_at",
        "last_error_ocpi_status",
        "country_code",
        "party_id",
        "role",
        "cpo_country_code",
        "cpo_party_id",
        "versions_url",
    ]

    @admin.display(description="Party")
    def party(self, obj: Partner) -> str:
        return f"{obj.country_code}*{obj.party_id}" if obj.party_id else "–"


@admin.register(EmspIdentity)
class EmspIdentityAdmin(ReadOnlyAdmin):
    """Set through the API (PUT /api/v1/organizations/{id}/emsp-identity/), which checks it and
    pushes every card again: read-only here."""

    list_display = [
        "organization",
        "country_code",
        "party_id",
        "emaid_prefix",
        "business_name",
        "driver_accounts",
    ]
    search_fields = ["party_id", "country_code", "organization__name"]
    list_filter = ["country_code", "driver_accounts"]
    list_select_related = ["organization"]
    actions = ["serve_driver_accounts", "stop_driver_accounts"]

    @admin.action(description="Driver accounts roam on the selected identity (one)")
    def serve_driver_accounts(self, request: Any, queryset: Any) -> None:
        chosen = list(queryset.values_list("pk", flat=True)[:2])
        if len(chosen) != 1:
            self.message_user(request, "Select exactly one identity.", level=messages.ERROR)
            return
        emsp_driving.driver_accounts_set(identity_id=chosen[0])
        self.message_user(
            request,
            "Driver accounts now charge at this organization's partner networks with app tokens "
            "it issues.",
        )

    @admin.action(description="Driver accounts stop roaming")
    def stop_driver_accounts(self, request: Any, queryset: Any) -> None:
        emsp_driving.driver_accounts_set(identity_id=None)
        self.message_user(request, "Driver accounts no longer see partner networks.")


@admin.register(PartnerCdr)
class PartnerCdrAdmin(ReadOnlyAdmin):
    """Our cards' CDRs from partner CPOs; a dispute is settled by support with the action."""

    list_display = [
        "cdr_id",
        "party",
        "organization",
        "status",
        "claimed",
        "recomputed",
        "currency",
        "price_total",
        "payment_status",
        "received_at",
    ]
    list_filter = ["status", "payment_status", "currency"]
    search_fields = ["cdr_id", "party_id", "reason", "organization__name"]
    list_select_related = ["organization", "partner"]
    actions = ["settle"]

    @admin.display(description="Party")
    def party(self, obj: PartnerCdr) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return bool(request.user.is_staff)  # the settle action; every field stays read-only

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in PartnerCdr._meta.fields]

    @admin.action(description="Settle the selected disputes (support checked them)")
    def settle(self, request: Any, queryset: Any) -> None:
        settled = emsp_cdrs.disputes_settle(cdr_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{settled} dispute(s) settled.")


@admin.register(PartnerCommand)
class PartnerCommandAdmin(DateHierarchyInRange, ReadOnlyAdmin):
    """Starts and stops we sent partner CPOs for driver accounts, with their answers."""

    list_display = [
        "created_at",
        "type",
        "partner",
        "location_id",
        "evse_uid",
        "response",
        "result",
        "message",
    ]
    list_filter = ["type", "response", "result"]
    search_fields = ["uid", "location_id", "evse_uid", "session_id", "token__uid"]
    list_select_related = ["partner"]
    date_hierarchy = "created_at"


@admin.register(PartnerSession)
class PartnerSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "session_id",
        "country_code",
        "party_id",
        "organization",
        "status",
        "last_updated",
    ]
    list_filter = ["status"]
    search_fields = ["session_id", "party_id", "organization__name"]
    list_select_related = ["organization"]


@admin.register(PartnerLocation)
class PartnerLocationAdmin(ReadOnlyAdmin):
    list_display = ["location_id", "country_code", "party_id", "organization", "last_updated"]
    list_filter = ["country_code"]
    search_fields = ["location_id", "party_id", "organization__name"]
    list_select_related = ["organization"]


@admin.register(PartnerTariff)
class PartnerTariffAdmin(ReadOnlyAdmin):
    list_display = [
        "tariff_id",
        "country_code",
        "party_id",
        "organization",
        "last_updated",
        "removed_at",
    ]
    list_filter = ["country_code"]
    search_fields = ["tariff_id", "party_id", "organization__name"]
    list_select_related = ["organization"]


@admin.register(OcpiLog)
class OcpiLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "partner",
        "direction",
        "method",
        "url",
        "http_status",
        "ocpi_status",
        "duration_ms",
    ]
    list_filter = ["direction", "module", "ocpi_status"]
    search_fields = ["url", "request_id", "correlation_id", "error"]
    list_select_related = ["partner"]
    autocomplete_fields = ["partner"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "partner",
        "method",
        "module",
        "object_key",
        "status",
        "attempts",
        "next_attempt_at",
        "partner_down",
        "last_error",
    ]
    # partner_down: the push whose retry every push of that partner waits for (it was down).
    list_filter = ["status", "module", "partner_down"]
    search_fields = ["object_key", "last_error"]
    list_select_related = ["partner"]
    autocomplete_fields = ["partner"]


@admin.register(PushedToken)
class PushedTokenAdmin(ReadOnlyAdmin):
    list_display = ["uid", "type", "party", "organization", "partner", "last_updated"]
    list_filter = ["type"]
    search_fields = ["uid", "party_id"]
    list_select_related = ["partner", "organization"]
    autocomplete_fields = ["organization", "partner", "token"]

    @admin.display(description="Party")
    def party(self, obj: PushedToken) -> str:
        return f"{obj.country_code}*{obj.party_id}"


@admin.register(HubParty)
class HubPartyAdmin(ReadOnlyAdmin):
    """Which hub routes which party for an operator (claimed by the hub's first push for it)."""

    list_display = ["msp", "partner", "created_at"]
    list_filter = ["partner__role"]
    search_fields = ["msp__party_id", "msp__country_code", "partner__name"]
    list_select_related = ["msp", "partner"]
    autocomplete_fields = ["msp", "partner"]


@admin.register(RemoteCommand)
class RemoteCommandAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "partner", "type", "charger", "response", "result", "message"]
    list_filter = ["type", "response", "result"]
    search_fields = ["reservation_id", "message"]
    list_select_related = ["partner", "charger"]
    autocomplete_fields = ["partner", "charger", "charger_command"]


@admin.register(Cdr)
class CdrAdmin(ReadOnlyAdmin):
    list_display = ["cdr_id", "partner", "session", "total", "kind", "created_at"]
    list_filter = ["estimated"]
    search_fields = ["cdr_id", "credit_reference__cdr_id"]
    list_select_related = ["partner", "session__charger", "credit_reference"]
    autocomplete_fields = ["partner", "session", "credit_reference"]
    actions = ["credit_and_replace"]

    @admin.action(description="Credit and replace by the charger's own stop (CDRs on an estimate)")
    def credit_and_replace(self, request, queryset):
        """The sweep corrects the last week's CDRs on an estimated stop by itself; older ones
        (marked when credits came, migration roaming.0020) wait for support to choose them."""
        from backoffice import queueing

        from .sessions import cdrs_correct

        done = cdrs_correct(list(queryset.values_list("pk", flat=True)))
        for partner_id in sorted(done["partner_ids"]):
            # The credits are saved: a broker that is down keeps the push for later, not a 500.
            queueing.on_commit("roaming.deliveries_send", partner_id)
        self.message_user(
            request,
            f"{done['replaced']} CDR(s) credited and replaced by the charger's own stop; "
            f"{done['confirmed']} billed the same, left as they are; {done['still_estimated']} "
            "still on our estimate (no stop from the charger yet). CDRs not on an estimate and "
            "credited ones are never touched.",
        )

    @admin.display(description="Kind")
    def kind(self, obj: Cdr) -> str:
        """A CDR, a Credit CDR of another (mod_cdrs), or a CDR made on our estimate of the stop."""
        if obj.credit_reference_id:
            return f"Credit CDR of {obj.credit_reference}"
        return "CDR on an estimated stop" if obj.estimated else "CDR"

    @admin.display(description="Total (incl. VAT)")
    def total(self, obj: Cdr) -> str:
        cost = obj.data.get("total_cost") or {}
        if "before_taxes" in cost:  # 2.3.0 Price
            taxes = sum(float(t.get("amount", 0)) for t in cost.get("taxes") or [])
            amount: object = round(float(cost["before_taxes"]) + taxes, 4)
        else:
            amount = cost.get("incl_vat", "–")
        return format_html("{} {}", amount, obj.data.get("currency", ""))


@admin.register(LocationProfile)
class LocationProfileAdmin(admin.ModelAdmin):
    list_display = ["property", "city", "country", "latitude", "longitude", "open_24_7"]
    search_fields = ["property__name", "city"]
    list_select_related = ["property"]
    autocomplete_fields = ["property"]


@admin.register(EvseProfile)
class EvseProfileAdmin(admin.ModelAdmin):
    list_display = ["charger", "standard", "format", "power_type", "max_voltage", "max_amperage"]
    list_filter = ["standard", "power_type"]
    search_fields = ["charger__station_id"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]


@admin.register(ParkingPlace)
class ParkingPlaceAdmin(admin.ModelAdmin):
    list_display = ["property", "physical_reference", "vehicle_types", "restricted_to_type"]
    list_filter = ["restricted_to_type", "reservation_required"]
    search_fields = ["property__name", "physical_reference"]
    list_select_related = ["property"]
    autocomplete_fields = ["property"]


@admin.register(Terminal)
class TerminalAdmin(ReadOnlyAdmin):
    """A PTP's payment terminal; hosts assign its EVSEs in the portal (the PTP is told)."""

    list_display = [
        "terminal_id",
        "partner",
        "organization",
        "last_updated",
        "assigned_at",
        "deactivated_at",
    ]
    search_fields = ["terminal_id", "partner__name"]
    list_select_related = ["partner", "organization"]
    autocomplete_fields = ["partner", "organization"]


@admin.register(TerminalActivation)
class TerminalActivationAdmin(ReadOnlyAdmin):
    """Activations a host asked a PTP for; the terminal is set once the PTP created it."""

    list_display = ["reference", "partner", "organization", "requested_at", "terminal"]
    search_fields = ["reference", "partner__name"]
    list_select_related = ["partner", "organization", "terminal"]
    autocomplete_fields = ["partner", "organization", "terminal"]


@admin.register(TerminalPayment)
class TerminalPaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "authorization_reference",
        "partner",
        "terminal",
        "charger",
        "session",
        "invoice_reference_id",
        "created_at",
    ]
    search_fields = ["authorization_reference", "invoice_reference_id"]
    list_select_related = ["partner", "terminal", "charger", "session"]
    autocomplete_fields = ["partner", "charger", "session", "token"]


@admin.register(FinancialAdviceConfirmation)
class FinancialAdviceConfirmationAdmin(CurrencyAmountsAdmin, ReadOnlyAdmin):
    money_fields = ("total_excl_tax", "total_incl_tax")
    list_display = [
        "fac_id",
        "partner",
        "payment",
        "capture_status_code",
        "total_incl_tax",
        "currency",
        "received_at",
    ]
    list_filter = ["capture_status_code"]
    search_fields = ["fac_id", "payment__authorization_reference"]
    list_select_related = ["partner", "payment"]
    autocomplete_fields = ["partner", "payment"]
