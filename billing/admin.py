"""Billing admin: rates and plans are editable; money records are read-only, refunds and
payout status changes go through actions that call services."""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from backoffice.admin import ReadOnlyAdmin
from backoffice.admin_paging import DateHierarchyInRange
from backoffice.forms import StaleEditMixin

from . import schedule
from .admin_money import CurrencyAmountsAdmin
from .gateways import GatewayError
from .models import (
    BillingSettings,
    ExchangeRate,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    Payout,
    PriceShown,
    PropertySignaturePolicy,
    Rate,
    Receipt,
    ReconciliationImport,
    ReconciliationIssue,
    Refund,
    SessionCharge,
    StatementJob,
    Subscription,
    SubscriptionInvoice,
    SubscriptionPlan,
    WebhookEvent,
    tax_mode_text,
)
from .money import is_known_currency, round_money
from .services import payouts, rates, refunds, subscriptions


class RateAdminForm(StaleEditMixin, forms.ModelForm):
    class Meta:
        model = Rate
        fields = "__all__"  # noqa: DJ007 - admin forms edit every field the ModelAdmin shows

    def clean(self):
        data = super().clean()
        prop, charger = data.get("property"), data.get("charger")
        if prop is not None and charger is not None and charger.property_id != prop.pk:
            self.add_error("charger", "The charger belongs to another property.")
        if "prices_include_tax" in data:
            self.instance.prices_include_tax = data["prices_include_tax"]
            try:
                rates.rate_tax_mode_check(self.instance)  # the rule the API and portal keep
            except ValidationError as exc:
                self.add_error(None, exc)
        return data


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    form = RateAdminForm
    list_display = [
        "property",
        "charger",
        "valid_from",
        "valid_until",
        "connection_fee",
        "energy_price_per_kwh",
        "idle_fee_per_minute",
        "tax_percent",
        "prices_include_tax",
    ]
    search_fields = ["property__name", "charger__station_id"]
    list_filter = ["property__currency", "valid_from"]
    list_select_related = ["property", "charger"]
    autocomplete_fields = ["property", "charger"]


@admin.register(BillingSettings)
class BillingSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "payout_period", "platform_fee_percent", "minimum_payout"]
    search_fields = ["organization__name"]
    list_filter = ["payout_period"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


@admin.register(PropertySignaturePolicy)
class PropertySignaturePolicyAdmin(admin.ModelAdmin):
    list_display = ["property", "signature_policy"]
    search_fields = ["property__name"]
    list_select_related = ["property"]
    autocomplete_fields = ["property"]


@admin.register(SessionCharge)
class SessionChargeAdmin(CurrencyAmountsAdmin, ReadOnlyAdmin):
    money_fields = ("subtotal", "tax", "total", "processing_fee")
    list_display = [
        "session",
        "organization",
        "total",
        "currency",
        "energy_wh",
        "energy_source",
        "held",
        "started_at",
        "final",
    ]
    search_fields = ["session__transaction_id", "session__charger__station_id", "session__id_tag"]
    list_filter = ["currency", "final", "held", "energy_source", "signature_status"]
    actions = ["waive_signature_hold"]

    @admin.action(description="Held (signed readings not verified): bill the measured energy")
    def waive_signature_hold(self, request, queryset):
        from .services.settlement import settlement_hold_waive

        done = 0
        for charge in queryset.filter(held=True):
            if settlement_hold_waive(session_id=charge.session_id, user=request.user):
                done += 1
        self.message_user(request, f"{done} held settlement(s) billed with the measured energy.")

    list_select_related = ["session", "session__charger", "organization"]
    autocomplete_fields = ["session", "rate", "subscription"]
    exclude = ["lines"]
    readonly_fields = ["cost_lines"]

    @admin.display(description="Cost lines")
    def cost_lines(self, obj):
        # The breakdown support reads to a customer, as lines (seed 003 §5), not the stored JSON.
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    line.get("description", ""),
                    line.get("quantity", ""),
                    line.get("unit", ""),
                    line.get("unit_price", ""),
                    line.get("amount", ""),
                )
                for line in obj.lines
            ),
        )
        return format_html(
            "<table><thead><tr><th>Line</th><th>Quantity</th><th>Unit price</th><th>Amount</th></tr></thead>"
            "<tbody>{}<tr><td>Subtotal (excl. tax)</td><td></td><td></td><td>{}</td></tr><tr><td>Tax {}</td>"
            "<td></td><td></td><td>{}</td></tr><tr><th>Total</th><td></td><td></td><th>{} {}</th></tr>"
            "</tbody></table>",
            rows,
            obj.subtotal,
            tax_mode_text(obj.tax_percent, included=obj.prices_include_tax),
            obj.tax,
            obj.total,
            obj.currency,
        )


class RefundActionForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.CharField(max_length=300)


class ExchangeRateForm(forms.ModelForm):
    class Meta:
        model = ExchangeRate
        fields = ["day", "currency", "per_euro", "source"]

    def clean_currency(self) -> str:
        code = str(self.cleaned_data["currency"]).upper()
        if not is_known_currency(code) or code == "EUR":
            raise ValidationError("An ISO 4217 currency other than EUR (rates are per euro).")
        return code

    def clean_per_euro(self) -> Decimal:
        value = self.cleaned_data["per_euro"]
        if value <= 0:
            raise ValidationError("Units of the currency for one euro: more than 0.")
        return value


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    """Reference rates (docs/billing.md): fetched daily from the ECB; support adds a day's rate
    here when the source was out of reach and a driver's partner CDR waits for it."""

    form = ExchangeRateForm
    list_display = ["day", "currency", "per_euro", "source", "fetched_at"]
    list_filter = ["currency"]
    search_fields = ["currency"]


@admin.register(PriceShown)
class PriceShownAdmin(ReadOnlyAdmin):
    """The price version each session is billed with (docs/billing.md): what was shown, when."""

    list_display = ["session", "charger", "source", "rate", "rate_valid_from", "shown_at"]
    search_fields = ["session__transaction_id", "charger__station_id", "reference"]
    list_filter = ["source", "currency"]
    list_select_related = ["session", "charger", "rate__property"]


@admin.register(Payment)
class PaymentAdmin(DateHierarchyInRange, CurrencyAmountsAdmin, ReadOnlyAdmin):
    money_fields = ("amount_held", "amount_captured", "amount_refunded")
    list_display = [
        "reference",
        "organization",
        "session",
        "email",
        "amount_held",
        "amount_captured",
        "amount_refunded",
        "currency",
        "status",
        "created_at",
    ]
    # Support finds a payment by what the customer knows: card last 4, email, station id, date.
    search_fields = [
        "reference",
        "email",
        "card_last4",
        "session__transaction_id",
        "session__charger__station_id",
    ]
    list_filter = ["status", "currency", "gateway", "created_at"]
    date_hierarchy = "created_at"
    list_select_related = ["organization", "session__charger"]
    autocomplete_fields = ["session", "organization"]
    actions = ["refund_payment"]

    @admin.action(description="Refund (partial or full) with a reason")
    def refund_payment(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Refund one payment at a time.", messages.ERROR)
            return None
        payment = queryset.get()
        if "apply" in request.POST:
            form = RefundActionForm(request.POST)
            if form.is_valid():
                try:
                    refund = refunds.refund_issue(
                        payment=payment,
                        amount=form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        source="support",
                        user=request.user,
                        idempotency_key=f"admin:{request.POST.get('nonce') or uuid.uuid4().hex}",
                    )
                except (ValidationError, GatewayError) as exc:
                    self.message_user(
                        request, "; ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR
                    )
                    return None
                self.message_user(
                    request,
                    f"Refunded {round_money(refund.amount, payment.currency)} {payment.currency} of {payment.reference}.",
                )
                return None
        else:
            form = RefundActionForm(initial={"amount": payment.refundable})
        return render(
            request,
            "billing/admin_refund.html",
            {
                "payment": payment,
                "form": form,
                "nonce": uuid.uuid4().hex,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Refund)
class RefundAdmin(CurrencyAmountsAdmin, ReadOnlyAdmin):
    money_fields = ("amount",)
    currency_path = "payment.currency"
    list_display = ["payment", "amount", "reason", "source", "created_by", "created_at"]
    search_fields = ["payment__reference", "reason"]
    list_filter = ["source"]
    list_select_related = ["payment", "created_by"]
    autocomplete_fields = ["payment"]


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    readonly_fields = ["account", "amount"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(CurrencyAmountsAdmin, ReadOnlyAdmin):
    money_fields = ("amount",)
    list_display = [
        "occurred_at",
        "kind",
        "organization",
        "amount",
        "currency",
        "payout",
        "idempotency_key",
    ]
    search_fields = ["idempotency_key", "memo"]
    list_filter = ["kind", "currency"]
    list_select_related = ["organization", "payout"]
    autocomplete_fields = ["session", "payment", "refund", "payout", "for_payout"]
    inlines = [LedgerEntryInline]


@admin.register(Payout)
class PayoutAdmin(CurrencyAmountsAdmin, ReadOnlyAdmin):
    money_fields = (
        "gross",
        "processing_fees",
        "platform_fees",
        "refunds",
        "license_fees",
        "carried_over",
        "net",
    )
    list_display = [
        "reference",
        "organization",
        "period_end",
        "net",
        "currency",
        "status_badge",
        "paid_at",
    ]
    search_fields = ["reference", "organization__name"]
    list_filter = ["status", "currency"]
    list_select_related = ["organization"]
    actions = ["mark_paid", "mark_failed"]

    @admin.display(description="Status")
    def status_badge(self, obj):
        return format_html("<b>{}</b> {}", obj.get_status_display(), obj.failure_reason)

    @admin.action(description="Mark paid")
    def mark_paid(self, request, queryset):
        for payout in queryset:
            payouts.payout_mark_paid(payout=payout)
        self.message_user(request, "Marked paid.")

    @admin.action(description="Mark failed (rolls into the next payout)")
    def mark_failed(self, request, queryset):
        for payout in queryset:
            payouts.payout_mark_failed(payout=payout, reason="Marked failed by support")
        self.message_user(request, "Marked failed; the amounts roll into the next payout.")


class IssueInline(admin.TabularInline):
    model = ReconciliationIssue
    extra = 0
    can_delete = False
    readonly_fields = [
        "kind",
        "reported_payout_id",
        "payout",
        "expected_amount",
        "reported_amount",
        "explanation",
    ]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationImport)
class ReconciliationImportAdmin(admin.ModelAdmin):
    list_display = ["pk", "filename", "status", "rows", "matched", "created_at"]
    list_filter = ["status"]
    search_fields = ["filename"]
    list_select_related = ["created_by"]
    readonly_fields = ["status", "rows", "matched", "error", "finished_at", "created_by"]
    inlines = [IssueInline]

    def save_model(self, request, obj, form, change):
        obj.created_by = obj.created_by or request.user
        super().save_model(request, obj, form, change)
        schedule.on_commit(schedule.RECONCILIATION_IMPORT, obj.pk)


@admin.register(StatementJob)
class StatementJobAdmin(ReadOnlyAdmin):
    list_display = [
        "organization",
        "kind",
        "date_from",
        "date_to",
        "status",
        "processed",
        "total",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["organization__name"]
    list_select_related = ["organization"]


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "property",
        "monthly_fee",
        "included_kwh",
        "energy_discount_percent",
        "active",
    ]
    search_fields = ["name", "property__name"]
    list_filter = ["active"]
    list_select_related = ["property"]
    autocomplete_fields = ["property"]


class SubscriptionInvoiceInline(admin.TabularInline):
    model = SubscriptionInvoice
    extra = 0
    can_delete = False
    fields = [
        "period_start",
        "period_end",
        "amount",
        "currency",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "paid_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SubscriptionInvoice)
class SubscriptionInvoiceAdmin(CurrencyAmountsAdmin, admin.ModelAdmin):
    """Monthly fees collected from saved cards; failed and retrying ones are filtered here."""

    money_fields = ("amount",)

    list_display = [
        "subscription",
        "period_start",
        "amount",
        "currency",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["status"]
    search_fields = ["subscription__email", "payment__reference", "payment__card_last4"]
    list_select_related = ["subscription__plan__property"]
    autocomplete_fields = ["subscription", "payment"]
    readonly_fields = [
        "subscription",
        "period_start",
        "period_end",
        "amount",
        "currency",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "payment",
        "paid_at",
        "receipt_sent_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    inlines = [SubscriptionInvoiceInline]
    list_display = [
        "email",
        "plan",
        "status",
        "started_at",
        "paid_until",
        "cancelled_at",
        "ends_at",
    ]
    search_fields = ["email", "token__uid"]
    list_filter = ["status"]
    list_select_related = ["plan", "token"]
    autocomplete_fields = ["plan", "token"]
    # The status and its dates change only through the cancel action (the driver's own cancel):
    # setting Cancelled by hand left the driver "Cancelled on ; the plan lasts until ." (issue 34).
    readonly_fields = [
        "status",
        "cancelled_at",
        "ends_at",
        "paid_until",
        "customer_ref",
        "payment_method_ref",
        "manage_key",
    ]
    actions = ["cancel_subscriptions"]

    @admin.action(description="Cancel (as the driver's own cancel: fees stop, dates set)")
    def cancel_subscriptions(self, request, queryset):
        active = list(
            queryset.filter(status=Subscription.Status.ACTIVE).select_related("plan__property")
        )
        if not active:
            self.message_user(request, "None of those subscriptions is active.", messages.ERROR)
            return None
        now = timezone.now()
        if "apply" in request.POST:
            for subscription in active:
                subscriptions.subscription_cancel(subscription=subscription, now=now)
            self.message_user(
                request,
                f"Cancelled {len(active)} subscription(s): no further monthly fees; each lasts "
                "until its paid month ends, and the driver's Plans page says so.",
            )
            return None
        return render(
            request,
            "billing/admin_subscription_cancel.html",
            {
                "rows": [(s, subscriptions.subscription_cancel_ends_at(s, now)) for s in active],
                "skipped": queryset.count() - len(active),
                "now": now,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "title": "Cancel subscriptions",
            },
        )


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    """Numbered receipts, one series per seller (docs/billing.md, Receipts): never edited."""

    list_display = [
        "reference",
        "organization",
        "session",
        "seller_name",
        "seller_vat_number",
        "buyer_company",
        "issued_at",
    ]
    search_fields = ["number", "session__charger__station_id", "buyer_company", "buyer_vat_id"]
    list_filter = ["issued_at"]
    list_select_related = ["organization", "session__charger"]
    autocomplete_fields = ["session", "organization"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    """The processor's events as received (or backfilled), and the backfill of those missed."""

    list_display = ["event_id", "type", "object_id", "received_at", "processed_at", "error"]
    list_filter = ["type", "processed_at"]
    search_fields = ["event_id", "object_id"]
    readonly_fields = ["event_id", "type", "livemode", "object_id", "payload", "error"]

    def get_urls(self) -> list:
        from django.urls import path

        return [
            path(
                "backfill/",
                self.admin_site.admin_view(self.backfill_view),
                name="billing_webhookevent_backfill",
            ),
            *super().get_urls(),
        ]

    def backfill_view(self, request):
        """POST: list the processor's events since the last backfill and apply those we never
        received, as the periodic task does (billing.webhooks.backfill)."""
        from django.core.exceptions import PermissionDenied
        from django.http import HttpResponseNotAllowed, HttpResponseRedirect
        from django.urls import reverse

        from .webhooks import backfill

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.is_superuser:
            raise PermissionDenied
        counts = backfill()
        level = messages.WARNING if counts["failed"] else messages.SUCCESS
        failed = (
            f" {counts['failed']} could not be listed or applied: the next run (or this button) "
            "tries them again."
            if counts["failed"]
            else ""
        )
        self.message_user(
            request,
            f"Asked the processor for the events since the last backfill: {counts['listed']} "
            f"listed, {counts['applied']} never received here and now applied.{failed}",
            level,
        )
        return HttpResponseRedirect(reverse("admin:billing_webhookevent_changelist"))
