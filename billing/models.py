"""Billing: rates, priced sessions, guest payments, the double-entry ledger, refunds,
payouts and their reconciliation, statements and subscription plans."""

from __future__ import annotations

import builtins
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .money import round_money

MONEY = {"max_digits": 14, "decimal_places": 4}
ZERO = Decimal("0")


def tax_mode_text(tax_percent: Decimal | None, *, included: bool) -> str:
    """Return "21 % tax included", "plus 21 % tax" or "no tax"."""
    if not tax_percent:
        return "no tax"
    percent = f"{Decimal(tax_percent).normalize():f}"
    return f"{percent} % tax included" if included else f"plus {percent} % tax"


class Rate(models.Model):
    """Prices at a property (or one charger of it) for a validity window.

    A charger's own rate wins over the property's; among several valid rates the one
    that started last wins (selectors.rate_for_charger).
    """

    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="rates"
    )
    charger = models.ForeignKey(
        "chargers.Charger",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rates",
        help_text="Empty = the whole property.",
    )
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Empty = open-ended.")
    connection_fee = models.DecimalField(**MONEY, default=ZERO)
    connection_fee_for_zero_energy = models.BooleanField(
        default=False, help_text="Also charge the connection fee when a session delivered 0 kWh."
    )
    energy_price_per_kwh = models.DecimalField(**MONEY, default=ZERO)
    time_price_per_hour = models.DecimalField(**MONEY, default=ZERO)
    idle_fee_per_minute = models.DecimalField(**MONEY, default=ZERO)
    idle_grace_minutes = models.PositiveIntegerField(default=0)
    idle_fee_cap = models.DecimalField(**MONEY, null=True, blank=True)
    tax_percent = models.DecimalField(max_digits=6, decimal_places=3, default=ZERO)
    # The location's tax mode, kept on each price so a change applies from the sessions that
    # start after it, as any price change does (docs/billing.md, "Tax"). Rates made before the
    # choice existed add tax on top (migration 0009_m46_tax_mode); a new location's prices include tax, as
    # EU consumer prices are shown; a new price of a location keeps the mode of the one in force.
    prices_include_tax = models.BooleanField(
        default=True,
        verbose_name="Prices include tax",
        help_text="On: the prices above include the tax (EU consumer prices). "
        "Off: the tax is added on top of them (e.g. US sales tax).",
    )
    processing_fee_percent = models.DecimalField(max_digits=6, decimal_places=3, default=ZERO)
    processing_fee_fixed = models.DecimalField(**MONEY, default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["property", "charger", "-valid_from"]
        indexes = [models.Index(fields=["property", "charger", "valid_from"], name="rate_lookup")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="rate_valid_window",
            ),
        ]

    def __str__(self) -> str:
        scope = self.charger.station_id if self.charger_id else "whole property"
        return f"{self.property} ({scope}) from {self.valid_from:%Y-%m-%d}"

    @builtins.property  # the field `property` shadows the builtin in this class body
    def currency(self) -> str:
        return self.property.currency

    @builtins.property
    def tax_mode_text(self) -> str:
        """How tax applies to these prices, in the words the price pages and guest page use."""
        return tax_mode_text(self.tax_percent, included=self.prices_include_tax)

    def clean(self) -> None:
        errors = {}
        if self.charger_id and self.property_id and self.charger.property_id != self.property_id:
            errors["charger"] = "The charger belongs to another property."
        if self.valid_until and self.valid_from and self.valid_until <= self.valid_from:
            errors["valid_until"] = "Must be after valid from."
        for name in (
            "connection_fee",
            "energy_price_per_kwh",
            "time_price_per_hour",
            "idle_fee_per_minute",
            "idle_fee_cap",
            "tax_percent",
            "processing_fee_percent",
            "processing_fee_fixed",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                errors[name] = "Must not be negative."
        if errors:
            raise ValidationError(errors)


# The fields of a Rate that price a session (billing.pricing.RateTerms): what a new price form
# carries over, what a session's price version copies, what the API publishes. One list.
RATE_PRICE_FIELDS = (
    "connection_fee",
    "connection_fee_for_zero_energy",
    "energy_price_per_kwh",
    "time_price_per_hour",
    "idle_fee_per_minute",
    "idle_grace_minutes",
    "idle_fee_cap",
    "prices_include_tax",
    "tax_percent",
    "processing_fee_percent",
    "processing_fee_fixed",
)


class BillingSettings(models.Model):
    """Per-organization payout terms."""

    class Period(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly (Mondays)"
        MONTHLY = "monthly", "Monthly (1st)"

    organization = models.OneToOneField(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="billing_settings"
    )
    payout_period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTHLY)
    platform_fee_percent = models.DecimalField(max_digits=6, decimal_places=3, default=ZERO)
    minimum_payout = models.DecimalField(
        **MONEY, default=ZERO, help_text="Balances below this are carried into the next payout."
    )
    bank_account_label = models.CharField(max_length=100, blank=True)
    # The host's payout account at the processor (Stripe Connect); bank details stay there.
    payout_account_id = models.CharField(max_length=60, blank=True)
    payout_account_ready = models.BooleanField(
        default=False, help_text="The processor can pay out to it."
    )
    payout_account_checked_at = models.DateTimeField(null=True, blank=True)

    class SignaturePolicy(models.TextChoices):
        HOLD = "hold", "Hold the settlement until support resolves it"
        BILL_MEASURED = "bill_measured", "Bill the charger's measured energy"

    # What to do with a finished session whose signed meter readings do not verify
    # (docs/metering.md): hold its settlement (default), or bill what the charger measured.
    signature_policy = models.CharField(
        max_length=16, choices=SignaturePolicy.choices, default=SignaturePolicy.HOLD
    )

    # The seller on the receipts of this organization's sessions (docs/billing.md, "Receipts"):
    # its legal name (the organization's name when blank) and VAT number.
    seller_name = models.CharField(max_length=200, blank=True)
    vat_number = models.CharField(max_length=20, blank=True)
    # The next receipt number of this seller; receipt_issue takes it under a row lock, in the
    # transaction that stores the receipt, so the numbers have no gaps and none is used twice.
    next_receipt_number = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "billing settings"

    def __str__(self) -> str:
        return f"Billing settings of {self.organization}"


class Receipt(models.Model):
    """The numbered receipt (an invoice under EU rules) of one paid session, issued once, in the
    name of the seller: the organization whose charger it was (docs/billing.md, "Receipts").
    The seller's and the buyer's details are copied at issue: a receipt never changes after."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.PROTECT, related_name="receipts"
    )
    number = models.PositiveIntegerField()
    session = models.OneToOneField(
        "chargers.ChargingSession", on_delete=models.PROTECT, related_name="receipt"
    )
    issued_at = models.DateTimeField()
    seller_name = models.CharField(max_length=200)
    seller_vat_number = models.CharField(max_length=20, blank=True)
    buyer_company = models.CharField(max_length=200, blank=True)
    buyer_vat_id = models.CharField(max_length=20, blank=True)
    # What it said when issued: the session's times and energy, the priced lines and totals
    # (decimals as strings; billing.receipts.receipt_facts). A charger's own stop that replaces
    # an estimated one later changes the session, not this. Empty on receipts issued before it
    # was kept: those show the session as it is.
    facts = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"], name="receipt_number_once_per_seller"
            )
        ]

    def __str__(self) -> str:
        return f"Receipt {self.reference}"

    @property
    def reference(self) -> str:
        """The number as printed (R-000042): one series per seller, whose name is beside it."""
        return f"R-{self.number:06d}"


class PropertySignaturePolicy(models.Model):
    """A property's own answer to unverified signed meter readings (docs/metering.md); it
    overrides its organization's `BillingSettings.signature_policy`."""

    property = models.OneToOneField(
        "backoffice.Property", on_delete=models.CASCADE, related_name="signature_policy"
    )
    signature_policy = models.CharField(
        max_length=16, choices=BillingSettings.SignaturePolicy.choices
    )

    class Meta:
        verbose_name_plural = "property signature policies"

    def __str__(self) -> str:
        return f"Signature policy of {self.property}"


class PriceShown(models.Model):
    """The price version a session is billed with (issue 56 item 5, docs/billing.md "Which
    price a session is billed with"): the price a guest or driver saw before starting, or, where
    none was shown (a card at the charger, an offline start, a roaming partner's start), the
    price in force at our own time of the start. Its terms are a copy: a rate edited or deleted
    later never changes what a started session is billed.

    A guest's row exists before the charger starts (`reference`, session empty) and is tied to
    the session when the charger's start arrives."""

    class Source(models.TextChoices):
        GUEST = "guest", "Shown on the guest page"
        DRIVER = "driver", "Shown to the signed-in driver"
        START = "start", "In force when we received the start"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    charger = models.ForeignKey("chargers.Charger", on_delete=models.CASCADE, related_name="+")
    session = models.OneToOneField(
        "chargers.ChargingSession",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="price_shown",
    )
    # "guest:<GuestSession id>": the start the price was shown for, until its session exists.
    reference = models.CharField(max_length=40, null=True, blank=True, unique=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    rate = models.ForeignKey(
        Rate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rate_valid_from = models.DateTimeField(help_text="The version: when the price took effect.")
    currency = models.CharField(max_length=3)
    # The price as shown: RATE_PRICE_FIELDS as strings (decimals) or ints/bools.
    terms = models.JSONField()
    shown_at = models.DateTimeField(help_text="Our clock: when it was shown (or the start came).")

    class Meta:
        ordering = ["-shown_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_source_display()} at {self.shown_at:%Y-%m-%d %H:%M} ({self.session_id})"


class SessionCharge(models.Model):
    """The priced cost of a session (a snapshot; recalculation replaces it)."""

    session = models.OneToOneField(
        "chargers.ChargingSession", on_delete=models.CASCADE, related_name="charge"
    )
    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.PROTECT, related_name="+"
    )
    rate = models.ForeignKey(
        Rate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="charges",
    )
    currency = models.CharField(max_length=3)
    lines = models.JSONField(default=list)
    subtotal = models.DecimalField(**MONEY)  # excl. tax
    tax = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)  # incl. tax
    # The tax mode of the rate the session was priced with: its prices included the tax
    # (taken out of them) or not (added on top). Charges priced before the choice: on top.
    prices_include_tax = models.BooleanField(default=False)
    tax_percent = models.DecimalField(max_digits=6, decimal_places=3, default=ZERO)
    processing_fee = models.DecimalField(**MONEY, default=ZERO)
    # Exact Wh as priced; None: the charger reported no energy reading (priced by time only).
    energy_wh = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    included_kwh_used = models.DecimalField(max_digits=12, decimal_places=3, default=ZERO)
    started_at = models.DateTimeField(help_text="Charger's clock, copied for statements.")
    final = models.BooleanField(default=True)
    priced_at = models.DateTimeField(auto_now=True)
    # Signed metering (docs/metering.md): `signed` when the energy billed is the meter's signed
    # end - signed start (both verified), `measured` otherwise (the charger's registers).
    energy_source = models.CharField(max_length=8, default="measured")
    signature_status = models.CharField(max_length=20, blank=True)  # SignedSummary.status
    # The signed readings did not verify and the host's policy is to hold: nothing is captured
    # or booked for this session until they do, or support decides.
    held = models.BooleanField(default=False)
    hold_reason = models.CharField(max_length=200, blank=True)
    # Support decided to bill this session's measured energy although its signed readings do
    # not verify (billing.services.settlement_hold_waive): it is never held again.
    hold_waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    hold_waived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["organization", "started_at"], name="charge_org_time")]

    def __str__(self) -> str:
        return f"{self.session} {round_money(self.total, self.currency)} {self.currency}"


class Payment(models.Model):
    """Money held on / taken from a guest's card for a session."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the card"
        AUTHORIZED = "authorized", "Held on card"
        CAPTURED = "captured", "Charged"
        RELEASED = "released", "Hold released"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.PROTECT, related_name="payments"
    )
    session = models.ForeignKey(
        "chargers.ChargingSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    session_ref = models.CharField(
        max_length=64,
        blank=True,
        help_text="The caller's id of the session before it started (guest app).",
    )
    email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3)
    amount_held = models.DecimalField(**MONEY)
    amount_captured = models.DecimalField(**MONEY, default=ZERO)
    amount_refunded = models.DecimalField(**MONEY, default=ZERO)
    gateway = models.CharField(max_length=20, default="sandbox")
    reference = models.CharField(
        max_length=100, unique=True, help_text="The processor's id of the hold."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AUTHORIZED)
    release_reason = models.CharField(max_length=200, blank=True)
    # The processor's last word on the card (a decline, a failed 3-D Secure), from the webhook.
    last_error = models.CharField(max_length=300, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        # What the customer knows (amount, card, day), not the processor's reference: it heads
        # the payment's admin page and names it in other records' lists (issue 51 item 7).
        amount = self.amount_captured or self.amount_held or ZERO
        parts = [f"{round_money(amount, self.currency)} {self.currency}".strip()]
        if self.card_last4:
            parts.append(f"card ending {self.card_last4}")
        if self.created_at is not None:
            parts.append(f"{self.created_at:%Y-%m-%d %H:%M} UTC")
        return f"Payment of {' · '.join(parts)} ({self.get_status_display().lower()})"

    @property
    def refundable(self) -> Decimal:
        return max(self.amount_captured - self.amount_refunded, ZERO)


class Payout(models.Model):
    """Money owed to a host organization for one period, and what happened to it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.PROTECT, related_name="payouts"
    )
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    gross = models.DecimalField(**MONEY, default=ZERO)
    processing_fees = models.DecimalField(**MONEY, default=ZERO)
    platform_fees = models.DecimalField(**MONEY, default=ZERO)
    refunds = models.DecimalField(**MONEY, default=ZERO)
    # Charger licenses the host activated (docs/billing.md, "Charger licenses").
    license_fees = models.DecimalField(**MONEY, default=ZERO)
    carried_over = models.DecimalField(
        **MONEY, default=ZERO, help_text="From failed or below-minimum earlier payouts."
    )
    net = models.DecimalField(**MONEY, default=ZERO)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(max_length=300, blank=True)
    reference = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    rolled_into = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rolled_from"
    )

    class Meta:
        ordering = ["-period_end", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "currency", "period_end"], name="unique_payout_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {round_money(self.net, self.currency)} {self.currency} ({self.status})"


class LedgerTransaction(models.Model):
    """One balanced money movement. Replaying the same idempotency key changes nothing."""

    class Kind(models.TextChoices):
        GUEST_CHARGE = "guest_charge", "Guest charge"
        PROCESSING_FEE = "processing_fee", "Payment processing fee"
        PLATFORM_FEE = "platform_fee", "Platform fee"
        REFUND = "refund", "Refund"
        PAYOUT = "payout", "Payout"
        PAYOUT_FAILED = "payout_failed", "Payout failed (returned to balance)"
        SUBSCRIPTION_FEE = "subscription_fee", "Subscription fee"
        LICENSE_FEE = "license_fee", "Charger license"
        # A driver account's session at a partner CPO, charged at our price (roaming eMSP).
        ROAMING_CHARGE = "roaming_charge", "Roaming charge (driver at a partner network)"

    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3)
    session = models.ForeignKey(
        "chargers.ChargingSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger"
    )
    refund = models.ForeignKey(
        "billing.Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="ledger"
    )
    # The payout whose net includes this movement (None = not yet paid out).
    payout = models.ForeignKey(
        Payout, on_delete=models.SET_NULL, null=True, blank=True, related_name="items"
    )
    # Which payout this movement itself is (kind payout / payout_failed).
    for_payout = models.ForeignKey(
        Payout, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    amount = models.DecimalField(
        **MONEY, help_text="The host-facing size of the movement (positive)."
    )
    memo = models.CharField(max_length=300, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(
                fields=["organization", "currency", "payout", "occurred_at"],
                name="ledger_payout_scan",
            ),
            models.Index(fields=["organization", "occurred_at"], name="ledger_org_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {round_money(self.amount, self.currency)} {self.currency} ({self.idempotency_key})"


class LedgerEntry(models.Model):
    """A debit (positive) or credit (negative) on one account; a transaction's entries sum to 0."""

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.CharField(max_length=80)
    amount = models.DecimalField(**MONEY)

    class Meta:
        indexes = [models.Index(fields=["account"], name="ledger_entry_account")]

    def __str__(self) -> str:
        return f"{self.account} {self.amount}"


class Refund(models.Model):
    """Money given back to a guest for a charged session (partial or full)."""

    class Source(models.TextChoices):
        SUPPORT = "support", "Support agent"
        HOST = "host", "Host owner"
        # A partner CPO's credit CDR cancelling a driver's session it had billed (roaming).
        NETWORK = "network", "Partner network's credit"
        # The session's final cost fell below what was charged: the charger's own stop arrived
        # after the guest was charged on our estimate of it (billing.services.refunds).
        FINAL_COST = "final", "Final cost below the charge"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=300)
    source = models.CharField(max_length=8, choices=Source.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    gateway_reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Refund {round_money(self.amount, self.payment.currency)} {self.payment.currency} of {self.payment.reference}"


class RefundHold(models.Model):
    """A refund on its way to the processor (billing.services.refunds.refund_issue): held
    against the payment's refundable amount while the processor is asked, so two people
    refunding the same payment at once with their own keys can never give back more than was
    charged, whatever the processor checks. Gone once the refund is booked or refused; one left
    by a process that died stops counting after HOLD_MINUTES.

    A refund whose answer never came (no connection, the processor's 5xx or 409) may have been
    made: its hold is marked `unanswered_since`, keeps counting whatever its age, and keeps what
    is needed to book the Refund once the processor answers (refunds_unanswered_settle)."""

    HOLD_MINUTES = 15

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="refund_holds")
    amount = models.DecimalField(**MONEY)
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=8, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notify_payer = models.BooleanField(default=True)
    unanswered_since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Refund of {self.amount} on its way ({self.idempotency_key})"


class ReconciliationImport(models.Model):
    """A bank/processor payout report (CSV) and the outcome of matching it to payouts."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    filename = models.CharField(max_length=200, blank=True)
    content = models.TextField()
    organization = models.ForeignKey(
        "backoffice.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty = a platform-wide report (staff).",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Reconciliation {self.pk} ({self.status})"


class ReconciliationIssue(models.Model):
    class Kind(models.TextChoices):
        MISSING_IN_REPORT = "missing_in_report", "Payout not in the bank report"
        UNKNOWN_PAYOUT = "unknown_payout", "Bank report row matches no payout"
        AMOUNT_DIFFERS = "amount_differs", "Amount differs"
        FAILED = "failed", "Bank reports the payout failed"
        STATUS_DIFFERS = "status_differs", "Status differs"
        DATE_DIFFERS = "date_differs", "Paid on another day than expected"
        BAD_ROW = "bad_row", "Row could not be read"

    reconciliation = models.ForeignKey(
        ReconciliationImport, on_delete=models.CASCADE, related_name="issues"
    )
    payout = models.ForeignKey(
        Payout, on_delete=models.SET_NULL, null=True, blank=True, related_name="issues"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reported_payout_id = models.CharField(max_length=64, blank=True)
    expected_amount = models.DecimalField(**MONEY, null=True, blank=True)
    reported_amount = models.DecimalField(**MONEY, null=True, blank=True)
    explanation = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.reported_payout_id or self.payout_id}"


class StatementJob(models.Model):
    """A CSV statement produced in the background, with progress for the portal."""

    class Kind(models.TextChoices):
        SESSIONS = "sessions", "Sessions CSV (date range)"
        ANNUAL = "annual", "Annual statement"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    date_from = models.DateField()
    date_to = models.DateField(help_text="Inclusive.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    file_path = models.CharField(
        max_length=300, blank=True, help_text="Relative to BILLING_STATEMENT_ROOT."
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date_from}..{self.date_to}"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total:
            return 0
        return min(int(self.processed * 100 / self.total), 99)


class SubscriptionPlan(models.Model):
    """A monthly plan at a property: a fee with included kWh and/or a discount on energy."""

    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="subscription_plans"
    )
    name = models.CharField(max_length=100)
    monthly_fee = models.DecimalField(**MONEY, default=ZERO)
    included_kwh = models.DecimalField(max_digits=10, decimal_places=3, default=ZERO)
    energy_discount_percent = models.DecimalField(max_digits=6, decimal_places=3, default=ZERO)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["property", "name"]

    def __str__(self) -> str:
        return f"{self.name} at {self.property}"


def _manage_key() -> str:
    return secrets.token_urlsafe(24)


class Subscription(models.Model):
    """A guest or resident holding a plan, identified by their card/app token and email."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CANCELLED = "cancelled", "Cancelled"

    plan = models.ForeignKey(
        SubscriptionPlan, on_delete=models.PROTECT, related_name="subscriptions"
    )
    token = models.ForeignKey(
        "authorization.Token",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="subscriptions",
    )
    email = models.EmailField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Benefits last until the paid month ends."
    )
    manage_key = models.CharField(max_length=64, unique=True, default=_manage_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Collected monthly through the gateway from a saved card (driver accounts); empty = the
    # plan is billed elsewhere (older subscriptions by link only).
    customer_ref = models.CharField(
        max_length=100, blank=True, help_text="The processor's customer id."
    )
    payment_method_ref = models.CharField(
        max_length=100, blank=True, help_text="The saved card charged monthly."
    )
    paid_until = models.DateTimeField(
        null=True, blank=True, help_text="End of the last paid month."
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.email} on {self.plan}"


class SubscriptionInvoice(models.Model):
    """One month's fee of a subscription and the attempts to collect it from the saved card."""

    class Status(models.TextChoices):
        DUE = "due", "Due"
        PAID = "paid", "Paid"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Failed (no more retries)"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="invoices"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DUE)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    # When the latest attempt was refused, and when that refusal was emailed (empty: not yet, so
    # the collection run sends it again, once: backoffice.resend).
    refused_at = models.DateTimeField(null=True, blank=True)
    refusal_sent_at = models.DateTimeField(null=True, blank=True)
    # When the current attempt's charge was first left without an answer (the processor keeps
    # its idempotency key about a day: after that it is not asked again, but reconciled).
    unanswered_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"], name="unique_invoice_period"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="invoice_retry_scan")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.period_start:%Y-%m} {round_money(self.amount, self.currency)} {self.currency} ({self.status})"


class WebhookEvent(models.Model):
    """A verified processor event, stored once by its id (webhooks are delivered at least once)."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=60)
    livemode = models.BooleanField(default=False)
    object_id = models.CharField(max_length=100, blank=True, db_index=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookBackfill(models.Model):
    """How far the event backfill (billing.webhooks.backfill) has listed the processor's events,
    per account ("" the platform, else a host's connected payout account). Its own mark, not the
    newest event received: the processor's retries of recent events arrive first when we are
    back, and older events whose retries ran out must still be listed."""

    account = models.CharField(max_length=100, unique=True, blank=True)
    listed_until = models.DateTimeField()
    run_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Events of {self.account or 'the platform'} listed until {self.listed_until}"


class SandboxIntent(models.Model):
    """SANDBOX ONLY: the sandbox gateway's PaymentIntents, in the database so that the web
    server, the worker and tests see the same state. Amounts are minor units, as in Stripe."""

    id = models.CharField(max_length=40, primary_key=True)
    client_secret = models.CharField(max_length=80)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=30, default="requires_payment_method")
    amount_capturable = models.BigIntegerField(default=0)
    amount_received = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    payment_method = models.CharField(max_length=60, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    last_error = models.JSONField(null=True, blank=True)
    return_url = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class SandboxRequest(models.Model):
    """SANDBOX ONLY: the first answer to each idempotency key, replayed like Stripe does."""

    key = models.CharField(max_length=255, primary_key=True)
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class SandboxCustomer(models.Model):
    """SANDBOX ONLY: Stripe's Customer, offline (the holder of saved cards)."""

    id = models.CharField(max_length=40, primary_key=True)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class SandboxPaymentMethod(models.Model):
    """SANDBOX ONLY: a saved card (Stripe's PaymentMethod) made from a test card; `test_method`
    is Stripe's test PaymentMethod it behaves like (approved, declined …)."""

    id = models.CharField(max_length=40, primary_key=True)
    customer = models.ForeignKey(
        SandboxCustomer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    test_method = models.CharField(max_length=60)
    brand = models.CharField(max_length=20, default="visa")
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField(default=12)
    exp_year = models.PositiveSmallIntegerField(default=2034)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class SandboxSetupIntent(models.Model):
    """SANDBOX ONLY: Stripe's SetupIntent (save a card for later without charging it)."""

    id = models.CharField(max_length=40, primary_key=True)
    client_secret = models.CharField(max_length=80)
    customer = models.ForeignKey(SandboxCustomer, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=30, default="requires_payment_method")
    payment_method = models.CharField(max_length=40, blank=True)
    last_error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class SandboxAccount(models.Model):
    """SANDBOX ONLY: a host's payout account (Stripe Connect's Account, offline)."""

    id = models.CharField(max_length=40, primary_key=True)
    email = models.EmailField(blank=True)
    details_submitted = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    bank_last4 = models.CharField(max_length=4, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class ReportSchedule(models.Model):
    """An organization's scheduled reports (issue 57 item 3): uptime, success KPIs and revenue
    of the last full day, week or month, emailed as CSV files to the members its owner chose
    (docs/operations.md "Scheduled reports")."""

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily (yesterday)"
        WEEKLY = "weekly", "Weekly (last Monday to Sunday)"
        MONTHLY = "monthly", "Monthly (last calendar month)"

    organization = models.OneToOneField(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="report_schedule"
    )
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.WEEKLY)
    uptime = models.BooleanField(default=True, help_text="Uptime per port (the CEC summary).")
    kpis = models.BooleanField(default=True, help_text="Success KPIs per port.")
    revenue = models.BooleanField(default=True, help_text="Revenue per month and currency.")
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    enabled = models.BooleanField(default=True)
    # The end (exclusive) of the last period sent: a period is sent once.
    last_period_end = models.DateField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.frequency}"


class ExchangeRate(models.Model):
    """A reference rate of one day: units of `currency` per euro (billing/exchange.py). Filled
    from the European Central Bank's daily rates (`billing.exchange_rates_fetch`), or by support
    in Django admin when that source is out of reach; a bill states the rate it used."""

    day = models.DateField()
    currency = models.CharField(max_length=3)
    per_euro = models.DecimalField(max_digits=18, decimal_places=8)
    source = models.CharField(max_length=100, default="ECB euro foreign exchange reference rates")
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["day", "currency"], name="unique_exchange_rate_day")
        ]

    def __str__(self) -> str:
        return f"{self.day}: 1 EUR = {self.per_euro} {self.currency}"
