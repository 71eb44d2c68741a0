"""Portal forms: connect or invite an OCPI partner, a location's OCPI data, a charger's connector."""

from __future__ import annotations

from typing import Any

from django import forms

from backoffice.models import Organization

from .client import BlockedPartnerUrl, check_partner_url
from .location_data import InvalidLocationData, check_country, check_hours
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


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class LocationProfileForm(forms.ModelForm):
    """A location's address and roaming data as hosts enter them: address, city, postal code,
    country, coordinates, operator and opening hours (24/7, or a period per weekday).

    The values are checked by roaming.location_data, the same rules as the API's roaming_data.
    """

    address = forms.CharField(
        max_length=400,
        label="Street and number",
        help_text="As drivers and roaming apps show it, e.g. 1 Quay Street.",
    )

    class Meta:
        model = LocationProfile
        fields = [
            "city",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "operator_name",
            "open_24_7",
        ]
        labels = {
            "country": "Country (ISO 3166 alpha-3 code)",
            "open_24_7": "Open 24/7",
            "operator_name": "Operator name",
        }
        help_texts = {
            "country": "Three letters: NLD for the Netherlands, DEU for Germany, FRA for France.",
            "latitude": "Decimal degrees, e.g. 52.0907374 (right-click the spot on a map to copy it).",
            "longitude": "Decimal degrees, e.g. 5.1214201.",
            "open_24_7": "Off: give the opening hours of each day below; a day left empty is closed.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prop = self.instance.property if self.instance.property_id else None
        if prop is not None and not self.is_bound:
            self.initial["address"] = prop.address
        periods = {p["weekday"]: p for p in (self.instance.regular_hours or [])}
        self.weekdays = []
        for number, day in enumerate(WEEKDAYS, start=1):
            for edge, label in (("begin", "opens"), ("end", "closes")):
                name = f"day{number}_{edge}"
                self.fields[name] = forms.TimeField(
                    required=False,
                    label=f"{day} {label}",
                    widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                )
                if number in periods:
                    self.initial[name] = periods[number][f"period_{edge}"]
            self.weekdays.append((day, self[f"day{number}_begin"], self[f"day{number}_end"]))

    def clean_country(self) -> str:
        try:
            return check_country(self.cleaned_data["country"])
        except InvalidLocationData as exc:
            raise forms.ValidationError(exc.message) from None

    def _regular_hours(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        regular = []
        for number, day in enumerate(WEEKDAYS, start=1):
            begin, end = data.get(f"day{number}_begin"), data.get(f"day{number}_end")
            if begin is None and end is None:
                continue
            if begin is None or end is None:
                self.add_error(
                    f"day{number}_begin", f"{day}: give both the opening and the closing time."
                )
                continue
            if end <= begin:
                self.add_error(f"day{number}_end", f"{day}: the closing time is before opening.")
                continue
            regular.append(
                {
                    "weekday": number,
                    "period_begin": begin.strftime("%H:%M"),
                    "period_end": end.strftime("%H:%M"),
                }
            )
        return regular

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        latitude, longitude = data.get("latitude"), data.get("longitude")
        if latitude is not None and not -90 <= latitude <= 90:
            self.add_error("latitude", "Between -90 and 90.")
        if longitude is not None and not -180 <= longitude <= 180:
            self.add_error("longitude", "Between -180 and 180.")
        always = bool(data.get("open_24_7"))
        regular = self._regular_hours(data)
        if always:
            regular = []
        try:
            hours = check_hours({"twentyfourseven": always, "regular_hours": regular})
        except InvalidLocationData as exc:
            message = (
                "Give the opening hours of at least one day, or tick Open 24/7."
                if not always and not regular
                else exc.message
            )
            self.add_error("open_24_7", message)
        else:
            # Not a Meta field: set here, saved with the rest.
            self.instance.regular_hours = hours.get("regular_hours", [])
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
