"""Portal forms of stays: a property's stay policy and a calendar feed to add."""

from __future__ import annotations

from typing import Any

from django import forms

from backoffice.models import Property

from .models import StayPolicy, Unit


class StayPolicyForm(forms.ModelForm):
    """The host's rules: charging included (with a kWh cap) or billed, grace, unit or shared chargers."""

    class Meta:
        model = StayPolicy
        fields = [
            "charging", "kwh_cap", "grace_before_minutes", "grace_after_minutes", "check_in_time",
            "check_out_time", "shared_chargers",
        ]
        labels = {
            "charging": "Charging during a stay",
            "kwh_cap": "kWh included per stay",
            "grace_before_minutes": "Grace before check-in (minutes)",
            "grace_after_minutes": "Grace after check-out (minutes)",
            "shared_chargers": "Guests may also use the property's shared chargers",
        }
        widgets = {
            "charging": forms.RadioSelect,
            "check_in_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "check_out_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean_kwh_cap(self) -> Any:
        cap = self.cleaned_data.get("kwh_cap")
        if cap is not None and cap <= 0:
            raise forms.ValidationError("Enter a positive number of kWh, or leave it empty for no cap.")
        return cap


class CalendarFeedForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, label="Name",
                           help_text="For example “Airbnb – Cabin 1”. Empty: the calendar's host name.")
    url = forms.URLField(max_length=1000, label="Calendar (iCal) export URL", assume_scheme="https")
    unit = forms.ModelChoiceField(queryset=Unit.objects.none(), required=False, label="Unit",
                                  empty_label="The whole property")

    def __init__(self, *args: Any, property: Property, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only this property's units: another property's (or organization's) unit is "not a choice".
        unit = self.fields["unit"]
        assert isinstance(unit, forms.ModelChoiceField)
        unit.queryset = Unit.objects.filter(property=property).order_by("name")

