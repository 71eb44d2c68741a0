"""Portal forms of stays: a property's stay policy and a calendar feed to add."""

from __future__ import annotations

from typing import Any

from django import forms

from backoffice.models import Organization, Property

from .models import PmsIntegration, StayPolicy, Unit


class StayPolicyForm(forms.ModelForm):
    """The host's rules: charging included (with a kWh cap) or billed, grace, unit or shared chargers."""

    class Meta:
        model = StayPolicy
        fields = [
            "charging",
            "kwh_cap",
            "grace_before_minutes",
            "grace_after_minutes",
            "check_in_time",
            "check_out_time",
            "shared_chargers",
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
            raise forms.ValidationError(
                "Enter a positive number of kWh, or leave it empty for no cap."
            )
        return cap


class UnitForm(forms.ModelForm):
    """A new unit of a property (apartment, room, parking space): chargers can then be moved into it."""

    class Meta:
        model = Unit
        fields = ["name", "kind"]
        labels = {"name": "Unit name", "kind": "Kind"}


class CalendarFeedForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        required=False,
        label="Name",
        help_text="For example “Airbnb – Cabin 1”. Empty: the calendar's host name.",
    )
    url = forms.URLField(max_length=1000, label="Calendar (iCal) export URL", assume_scheme="https")
    unit = forms.ModelChoiceField(
        queryset=Unit.objects.none(), required=False, label="Unit", empty_label="The whole property"
    )

    def __init__(self, *args: Any, property: Property, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only this property's units: another property's (or organization's) unit is "not a choice".
        unit = self.fields["unit"]
        assert isinstance(unit, forms.ModelChoiceField)
        unit.queryset = Unit.objects.filter(property=property).order_by("name")


class PmsConnectForm(forms.Form):
    """Connect a PMS: the vendor and its API credentials (write-only, stored sealed)."""

    organization: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=Organization.objects.none(), label="Organization"
    )  # the user's writable ones, in __init__
    vendor = forms.ChoiceField(choices=PmsIntegration.Vendor.choices, label="PMS")
    name = forms.CharField(
        max_length=200, required=False, label="Name", help_text="Optional, e.g. “Guesty – lake”."
    )
    base_url = forms.URLField(
        max_length=300,
        required=False,
        label="Track address",
        assume_scheme="https",
        help_text="Track only: https://yourcompany.trackhs.com",
    )
    key = forms.CharField(
        max_length=300,
        required=False,
        label="Client ID / API key",
        help_text="Guesty: client ID. Track: API key. Hospitable: leave empty.",
    )
    secret = forms.CharField(
        max_length=2000,
        required=False,
        label="Client secret / API secret / token",
        widget=forms.PasswordInput(render_value=False),
        help_text="Guesty: client secret. Track: API secret. Hospitable: personal access token.",
    )
    webhook_secret = forms.CharField(
        max_length=300,
        required=False,
        label="Webhook signing secret",
        widget=forms.PasswordInput(render_value=False),
        help_text="Guesty (whsec_…) or Hospitable, to verify their webhooks. Optional.",
    )

    def __init__(self, *args: Any, organizations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        organization = self.fields["organization"]
        assert isinstance(organization, forms.ModelChoiceField)
        organization.queryset = organizations


class PmsCredentialsForm(forms.Form):
    key = forms.CharField(max_length=300, required=False, label="Client ID / API key")
    secret = forms.CharField(
        max_length=2000,
        required=False,
        label="Client secret / API secret / token",
        widget=forms.PasswordInput(render_value=False),
    )
    webhook_secret = forms.CharField(
        max_length=300,
        required=False,
        label="Webhook signing secret",
        widget=forms.PasswordInput(render_value=False),
    )
