"""Portal forms: connect or invite an OCPI partner, a location's OCPI data (with its parking
places), a charger's connector, the EVSEs a payment terminal serves."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django import forms

from backoffice.forms import StaleEditMixin
from backoffice.models import Organization
from chargers.models import Charger

from .client import BlockedPartnerUrl, check_partner_url
from .location_data import InvalidLocationData, check_country, check_energy_mix, check_hours
from .models import (
    AccessPointFeed,
    EvseProfile,
    LocationProfile,
    ParkingPlace,
    ParkingRestriction,
    Terminal,
    VehicleType,
)


class _OrganizationForm(forms.Form):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        empty_label=None,
        help_text="The operator whose public locations the partner sees.",
    )
    name = forms.CharField(max_length=200, label="Partner name")

    def __init__(self, *args: Any, organizations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["organization"]).queryset = organizations


class PartnerInviteForm(_OrganizationForm):
    """We issue a token A; the partner registers with our versions URL and it. The form's own
    key (new each time it is shown) makes the form sent twice one partner."""

    key = forms.RegexField(
        regex=r"^[A-Za-z0-9_-]{16,64}$", required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["key"] = uuid.uuid4().hex


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


class LocationProfileForm(StaleEditMixin, forms.ModelForm):
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
            "help_phone",
            "open_24_7",
        ]
        labels = {
            "country": "Country (ISO 3166 alpha-3 code)",
            "open_24_7": "Open 24/7",
            "operator_name": "Operator name",
            "help_phone": "Help phone number",
        }
        help_texts = {
            "country": "Three letters: NLD for the Netherlands, DEU for Germany, FRA for France.",
            "latitude": "Decimal degrees, e.g. 52.0907374 (right-click the spot on a map to copy it).",
            "longitude": "Decimal degrees, e.g. 5.1214201.",
            "open_24_7": "Off: give the opening hours of each day below; a day left empty is closed.",
        }

    green_energy = forms.ChoiceField(
        choices=[("", "Not entered"), ("yes", "Yes, green energy"), ("no", "No")],
        required=False,
        label="Green energy",
        help_text="Whether the energy sold here is 100 % renewable (OCPI energy_mix). National "
        "access points require an answer (AFIR).",
    )
    energy_supplier = forms.CharField(max_length=64, required=False, label="Energy supplier")
    energy_product = forms.CharField(
        max_length=64, required=False, label="Energy product (the supplier's tariff name)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prop = self.instance.property if self.instance.property_id else None
        if prop is not None and not self.is_bound:
            self.initial["address"] = prop.address
        mix = self.instance.energy_mix
        if isinstance(mix, dict) and not self.is_bound:
            self.initial["green_energy"] = "yes" if mix.get("is_green_energy") else "no"
            self.initial["energy_supplier"] = mix.get("supplier_name", "")
            self.initial["energy_product"] = mix.get("energy_product_name", "")
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
        self._energy_mix(data)
        return data

    def _energy_mix(self, data: dict[str, Any]) -> None:
        green = data.get("green_energy") or ""
        if not green:
            if data.get("energy_supplier") or data.get("energy_product"):
                self.add_error("green_energy", "Say whether the energy is green.")
            self.instance.energy_mix = None
            return
        self.instance.energy_mix = check_energy_mix(
            {
                "is_green_energy": green == "yes",
                "supplier_name": data.get("energy_supplier") or "",
                "energy_product_name": data.get("energy_product") or "",
            }
        )


class EvseProfileForm(StaleEditMixin, forms.ModelForm):
    parking_restrictions = forms.MultipleChoiceField(
        choices=ParkingRestriction.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Who may charge here",
        help_text="Leave all unticked when anyone may. (Vehicle types are set per parking place.)",
    )

    class Meta:
        model = EvseProfile
        fields = [
            "standard",
            "format",
            "power_type",
            "max_voltage",
            "max_amperage",
            "max_electric_power",
            "parking_restrictions",
        ]


class ParkingPlaceForm(forms.ModelForm):
    """One parking space at a location (OCPI 2.3.0 Parking; what AFIR asks for the National
    Access Point)."""

    vehicle_types = forms.MultipleChoiceField(
        choices=VehicleType.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Vehicles it is made for",
        help_text="Tick “Vehicle with a disabled parking permit” for a space reserved for people "
        "with disabilities.",
    )
    standards = forms.CharField(
        required=False,
        max_length=200,
        help_text="Standards it meets, comma separated, e.g. PAS 1899.",
    )
    chargers: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(
        queryset=Charger.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Chargers serving it",
    )

    class Meta:
        model = ParkingPlace
        fields = [
            "physical_reference",
            "vehicle_types",
            "restricted_to_type",
            "reservation_required",
            "time_limit",
            "parking_space_length",
            "parking_space_width",
            "max_vehicle_height",
            "max_vehicle_weight",
            "direction",
            "drive_through",
            "roofed",
            "lighting",
            "dangerous_goods_allowed",
            "refrigeration_outlet",
        ]
        labels = {
            "physical_reference": "Marking on site",
            "restricted_to_type": "Only these vehicles may park here",
            "reservation_required": "A reservation is needed",
            "time_limit": "Time limit (minutes)",
            "parking_space_length": "Space length (cm)",
            "parking_space_width": "Space width (cm)",
            "max_vehicle_height": "Height limit (cm)",
            "max_vehicle_weight": "Weight limit (kg)",
        }

    def __init__(self, *args: Any, chargers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelMultipleChoiceField, self.fields["chargers"]).queryset = chargers
        if self.instance.pk and not self.is_bound:
            self.initial["standards"] = ", ".join(self.instance.standards or [])
            self.initial["chargers"] = [link.charger_id for link in self.instance.evses.all()]

    def clean_standards(self) -> list[str]:
        items = [s.strip() for s in str(self.cleaned_data.get("standards") or "").split(",")]
        items = [s for s in items if s]
        if any(len(s) > 36 for s in items):
            raise forms.ValidationError("Each standard up to 36 characters.")
        return items

    def as_place(self) -> dict[str, Any]:
        """Return the place as roaming.services.parking_places_save takes it (positions of
        chargers that already served it are kept)."""
        data = self.cleaned_data
        place: dict[str, Any] = {name: data.get(name) for name in self.Meta.fields}
        place["standards"] = data.get("standards") or []
        if self.instance.pk:
            place["id"] = self.instance.pk
        positions = (
            {link.charger_id: link.evse_position for link in self.instance.evses.all()}
            if self.instance.pk
            else {}
        )
        place["chargers"] = [
            {"station_id": c.station_id, "evse_position": positions.get(c.pk, "")}
            for c in data.get("chargers") or []
        ]
        return place


class TerminalAssignForm(forms.Form):
    """The locations and EVSEs a PTP's payment terminal serves (only public roaming chargers)."""

    locations = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Whole locations",
        help_text="Every EVSE of the location, also ones added later.",
    )
    evses = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Single EVSEs"
    )

    def __init__(self, *args: Any, terminal: Terminal, assignable: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["locations"]).choices = [
            (str(prop.pk), prop.name) for prop, _ in assignable
        ]
        cast(forms.ChoiceField, self.fields["evses"]).choices = [
            (
                f"{charger.pk}:{connector_id}",
                f"{prop.name} · {charger.station_id} port {connector_id}",
            )
            for prop, evses in assignable
            for charger, connector_id in evses
        ]
        if not self.is_bound and terminal.pk is not None:
            rows = list(terminal.assignments.all())
            self.initial["locations"] = [str(r.property_id) for r in rows if r.charger_id is None]
            self.initial["evses"] = [
                f"{r.charger_id}:{r.connector_id}" for r in rows if r.charger_id is not None
            ]

    def assignment(self) -> tuple[list[int], list[tuple[int, int]]]:
        locations = [int(value) for value in self.cleaned_data["locations"]]
        evses = []
        for value in self.cleaned_data["evses"]:
            charger_id, connector_id = value.split(":")
            evses.append((int(charger_id), int(connector_id)))
        return locations, evses


class TerminalActivateForm(TerminalAssignForm):
    """Ask the PTP to activate a terminal built into a station, known by its reference."""

    reference = forms.CharField(
        max_length=36,
        label="Terminal reference",
        help_text="As the PTP or the station's maker gave it, e.g. the terminal's serial number.",
    )
    field_order = ["reference", "locations", "evses"]

    def __init__(self, *args: Any, assignable: Any, **kwargs: Any) -> None:
        super().__init__(*args, terminal=Terminal(), assignable=assignable, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("locations") and not data.get("evses"):
            raise forms.ValidationError("Choose where the terminal serves: a location or EVSEs.")
        return data


class AccessPointFeedForm(forms.Form):
    """An organization's feed to one country's National Access Point (AFIR, docs/afir.md)."""

    organization = forms.ModelChoiceField(queryset=Organization.objects.none(), empty_label=None)
    country = forms.RegexField(
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        help_text="Two letters (ISO 3166-1 alpha-2): NL for the Netherlands.",
        error_messages={"invalid": "Two letters, e.g. NL."},
    )
    enabled = forms.BooleanField(required=False, label="Deliver to this access point now")
    protocol = forms.ChoiceField(choices=AccessPointFeed.Protocol.choices)
    endpoint_url = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        label="Access point's OCPI address",
        help_text="Its OCPI base URL: /locations and /tariffs are pushed under it.",
    )
    token = forms.CharField(
        max_length=200,
        required=False,
        label="Token from the access point",
        widget=forms.PasswordInput,
        help_text="Leave empty to keep the one stored.",
    )

    def __init__(self, *args: Any, organizations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["organization"]).queryset = organizations

    def feed_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data[name] for name in ("enabled", "protocol", "endpoint_url")}
        if self.cleaned_data.get("token"):
            data["token"] = self.cleaned_data["token"]
        return data
