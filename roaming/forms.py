"""Portal forms: connect or invite an OCPI partner, a location's OCPI data, a charger's connector."""

from __future__ import annotations

from typing import Any

from django import forms

from backoffice.models import Organization

from .client import BlockedPartnerUrl, check_partner_url
from .location_data import InvalidLocationData, check_country
from .models import EvseProfile, LocationProfile


class _OrganizationForm(forms.Form):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        empty_label=None,
        help_text="The operator whose public locations the partner sees.",
    )
    name = forms.CharField(max_length=200, label="Partner name")

    def __init__(self, *args: Any, organizations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = organizations  # type: ignore[attr-defined]


class PartnerInviteForm(_OrganizationForm):
    """We issue a token A; the partner registers with our versions URL and it."""


class PartnerConnectForm(_OrganizationForm):
    """We register with the partner from its versions URL and the token A it gave us."""

    versions_url = forms.URLField(
        max_length=500,
        label="Partner's versions URL",
        assume_scheme="https",
        help_text="e.g. https://emsp.example.com/ocpi/versions",
    )
    token_a = forms.CharField(
        max_length=64,
        label="Token A from the partner",
        widget=forms.PasswordInput(render_value=True),
    )

    def clean_versions_url(self) -> str:
        url = str(self.cleaned_data["versions_url"])
        try:
            check_partner_url(url)
        except BlockedPartnerUrl as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


class LocationProfileForm(forms.ModelForm):
    class Meta:
        model = LocationProfile
        fields = ["city", "postal_code", "country", "latitude", "longitude", "open_24_7"]
        labels = {"country": "Country (ISO 3166 alpha-3)", "open_24_7": "Open 24/7"}

    def clean_country(self) -> str:
        try:
            return check_country(self.cleaned_data["country"])
        except InvalidLocationData as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        latitude, longitude = data.get("latitude"), data.get("longitude")
        if latitude is not None and not -90 <= latitude <= 90:
            self.add_error("latitude", "Between -90 and 90.")
        if longitude is not None and not -180 <= longitude <= 180:
            self.add_error("longitude", "Between -180 and 180.")
        return data


class EvseProfileForm(forms.ModelForm):
    class Meta:
        model = EvseProfile
        fields = [
            "standard",
            "format",
            "power_type",
            "max_voltage",
            "max_amperage",
            "max_electric_power",
        ]
