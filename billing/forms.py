"""Portal forms: rates, monthly plans, refunds, statements, reconciliation uploads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from backoffice.forms import DATE_INPUT_FORMATS, LocalDateTimeField, StaleEditMixin, date_input
from backoffice.tenancy import TenantFormMixin

from .models import RATE_PRICE_FIELDS, Rate, ReportSchedule, StatementJob
from .taxes import VAT_ID_RULE, vat_id_normalized

MONEY_INPUT = {"step": "0.0001", "min": "0"}


# The price fields, grouped as the page shows them; labels name the location's currency.
PRICE_GROUPS = (
    (
        "What drivers pay",
        ("connection_fee", "energy_price_per_kwh", "time_price_per_hour"),
    ),
    ("Idle fee", ("idle_fee_per_minute", "idle_grace_minutes", "idle_fee_cap")),
    (
        "Tax and processing fees",
        ("prices_include_tax", "tax_percent", "processing_fee_percent", "processing_fee_fixed"),
    ),
)
_MONEY_LABELS = {
    "connection_fee": ("Connection fee", "{c} per session"),
    "energy_price_per_kwh": ("Energy", "{c} per kWh"),
    "time_price_per_hour": ("Charging time", "{c} per hour"),
    "idle_fee_per_minute": ("Idle fee", "{c} per minute"),
    "idle_fee_cap": ("Idle fee cap", "{c} at most per session"),
    "processing_fee_fixed": ("Processing fee", "{c} per payment"),
}


# The fields a new price carries over from the one in force (everything but where and when).
PRICE_FIELDS = RATE_PRICE_FIELDS


def rate_initial(rate: Rate | None, *, charger_id: int | None, now) -> dict:
    """A new price's form starts from the price in force (not from zeros: changing only the kWh
    price must keep the idle and processing fees), from now, for the chosen charger."""
    initial: dict = {"valid_from": now.replace(second=0, microsecond=0), "charger": charger_id}
    if rate is not None:
        initial.update({name: getattr(rate, name) for name in PRICE_FIELDS})
    return initial


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)


class RateForm(StaleEditMixin, TenantFormMixin, forms.ModelForm):
    """A location's (or one charger's) prices, in the location's currency and time zone."""

    valid_from = LocalDateTimeField(label="From")
    valid_until = LocalDateTimeField(
        label="Until", required=False, help_text="Empty: until you set another price."
    )

    class Meta:
        model = Rate
        fields = ["charger", "valid_from", "valid_until", *PRICE_FIELDS]
        widgets = {
            **{
                name: forms.NumberInput(attrs=MONEY_INPUT)
                for name in (
                    "connection_fee",
                    "energy_price_per_kwh",
                    "time_price_per_hour",
                    "idle_fee_per_minute",
                    "idle_fee_cap",
                    "tax_percent",
                    "processing_fee_percent",
                    "processing_fee_fixed",
                )
            },
        }
        labels = {
            "charger": "Applies to",
            "connection_fee_for_zero_energy": "Charge the connection fee also when no energy was delivered",
            "idle_grace_minutes": "Idle fee starts after (minutes)",
            "tax_percent": "Tax (%)",
            "processing_fee_percent": "Processing fee (% of the amount)",
        }
        help_texts = {
            "idle_fee_per_minute": "While the car stays plugged in after charging ended.",
            "idle_fee_cap": "Empty: no cap.",
            "tax_percent": "E.g. 21 for NL VAT: taken out of the prices above when they include "
            "tax, added on top of them when they do not; receipts show it either way.",
        }

    def __init__(self, *args, property, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.property = property
        self.restrict("charger", property.chargers.order_by("station_id"))
        self.fields["charger"].required = False
        self.fields["charger"].empty_label = "Every charger of the location"
        currency = property.currency
        for name, (label, unit) in _MONEY_LABELS.items():
            self.fields[name].label = f"{label} ({unit.format(c=currency)})"
        self.groups = [(title, [self[name] for name in names]) for title, names in PRICE_GROUPS]

    def changes(self, rate: Rate | None) -> list[tuple[str, str, str]]:
        """What saving this (valid) form changes against the price in force: (label, from, to)
        for each price field that differs; every field when no price is in force."""
        rows = []
        for name in PRICE_FIELDS:
            new = self.cleaned_data.get(name)
            old = getattr(rate, name) if rate is not None else None
            if rate is None or old != new:
                rows.append((str(self.fields[name].label), _shown(old), _shown(new)))
        return rows


class RefundForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0.01)
    reason = forms.CharField(
        max_length=300,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. idle fee charged while the car was still charging"}
        ),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)


class StatementForm(forms.Form):
    kind = forms.ChoiceField(choices=StatementJob.Kind.choices)
    date_from = forms.DateField(
        widget=date_input(), input_formats=DATE_INPUT_FORMATS, required=False
    )
    date_to = forms.DateField(widget=date_input(), input_formats=DATE_INPUT_FORMATS, required=False)
    year = forms.IntegerField(
        min_value=2000, max_value=2100, required=False, help_text="For the annual statement."
    )
    organization = forms.ChoiceField(choices=())

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].choices = [(o.pk, o.name) for o in organizations]

    @staticmethod
    def _this_year(organization_id) -> int:
        """The year it is where the host is (its statements' zone): on 31 December evening in
        New York it is still that year, though the new one in UTC."""
        from .selectors import organization_zone

        now = timezone.now()
        if not organization_id:
            return now.year
        return now.astimezone(organization_zone(int(organization_id))).year

    def clean(self):
        data = super().clean()
        if data.get("kind") == StatementJob.Kind.ANNUAL:
            year = data.get("year") or self._this_year(data.get("organization"))
            data["date_from"], data["date_to"] = date(year, 1, 1), date(year, 12, 31)
        elif not data.get("date_from") or not data.get("date_to"):
            raise forms.ValidationError("Choose the first and last day of the statement.")
        elif data["date_to"] < data["date_from"]:
            raise forms.ValidationError("The last day is before the first day.")
        return data


class ReconciliationForm(forms.Form):
    report = forms.FileField(
        help_text="CSV with columns payout_id, date, amount, status (optional reason)."
    )


class SellerForm(forms.Form):
    """The host's details as the seller on its receipts (docs/billing.md, "Receipts")."""

    seller_name = forms.CharField(
        label="Legal name on receipts",
        max_length=200,
        required=False,
        help_text="Leave empty to use your organization's name.",
    )
    vat_number = forms.CharField(
        label="VAT number",
        max_length=20,
        required=False,
        help_text="With the country's two letters first, e.g. NL123456789B01. Leave empty if you "
        "are not registered for VAT.",
    )

    def clean_seller_name(self) -> str:
        return " ".join(self.cleaned_data["seller_name"].split())

    def clean_vat_number(self) -> str:
        value = vat_id_normalized(self.cleaned_data["vat_number"])
        if value is None:
            raise forms.ValidationError(VAT_ID_RULE)
        return value


class ReportScheduleForm(forms.Form):
    """An organization's scheduled reports: how often, which files, to which members."""

    frequency = forms.ChoiceField(choices=ReportSchedule.Frequency.choices)
    uptime = forms.BooleanField(required=False, label="Uptime per port")
    kpis = forms.BooleanField(required=False, label="Success KPIs per port")
    revenue = forms.BooleanField(required=False, label="Revenue per month and currency")
    recipients = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Members of the organization who get the email.",
    )
    enabled = forms.BooleanField(required=False, label="Send the reports")

    def __init__(self, *args: Any, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the organization's own members can receive its figures.
        field = self.fields["recipients"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = (
            get_user_model()
            .objects.filter(memberships__organization_id=organization_id)
            .order_by("email", "pk")
        )
        field.label_from_instance = lambda user: user.email or user.get_username()


class PlanForm(forms.Form):
    """A monthly plan a location offers drivers: a fee for included kWh and/or a discount on
    energy (its currency is the location's)."""

    name = forms.CharField(max_length=100, help_text="What drivers see, e.g. Resident monthly.")
    monthly_fee = forms.DecimalField(
        min_value=Decimal(0), max_digits=10, decimal_places=2, label="Monthly fee"
    )
    included_kwh = forms.DecimalField(
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=3,
        initial=Decimal(0),
        label="kWh included each month",
    )
    energy_discount_percent = forms.DecimalField(
        min_value=Decimal(0),
        max_value=Decimal(100),
        max_digits=6,
        decimal_places=3,
        initial=Decimal(0),
        label="Discount on energy (%)",
        help_text="Off the energy price of every session beyond the included kWh.",
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        if not data.get("included_kwh") and not data.get("energy_discount_percent"):
            raise forms.ValidationError(
                "A plan gives something for its fee: included kWh, a discount on energy, or both."
            )
        return data
