"""Portal forms: rates, refunds, statements, reconciliation uploads."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils import timezone

from backoffice.tenancy import TenantFormMixin

from .models import Rate, StatementJob

MONEY_INPUT = {"step": "0.0001", "min": "0"}


class RateForm(TenantFormMixin, forms.ModelForm):
    class Meta:
        model = Rate
        fields = [
            "charger",
            "valid_from",
            "valid_until",
            "connection_fee",
            "connection_fee_for_zero_energy",
            "energy_price_per_kwh",
            "time_price_per_hour",
            "idle_fee_per_minute",
            "idle_grace_minutes",
            "idle_fee_cap",
            "tax_percent",
            "processing_fee_percent",
            "processing_fee_fixed",
        ]
        widgets = {
            "valid_from": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            "valid_until": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
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
        labels = {"charger": "Charger (empty = whole location)"}

    def __init__(self, *args, property, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.property = property
        self.restrict("charger", property.chargers.order_by("station_id"))
        self.fields["charger"].required = False
        for name in ("valid_from", "valid_until"):
            self.fields[name].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


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
    date_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), required=False)
    date_to = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), required=False)
    year = forms.IntegerField(
        min_value=2000, max_value=2100, required=False, help_text="For the annual statement."
    )
    organization = forms.ChoiceField(choices=())

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].choices = [(o.pk, o.name) for o in organizations]

    def clean(self):
        data = super().clean()
        if data.get("kind") == StatementJob.Kind.ANNUAL:
            year = data.get("year") or timezone.now().year
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
