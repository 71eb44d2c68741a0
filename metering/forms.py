"""The portal's meter-key forms (a charger's Meter keys tab). The keys are written by
metering.services, the same functions the API calls; these forms only read what a person typed."""

from __future__ import annotations

from typing import Any

from django import forms

from . import ocmf


class MeterKeyForm(forms.Form):
    """A key a person registers from the meter's label: the meter named by its serial or, for a
    meter whose signed values name none, by its connector (1.6) or EVSE (2.0.1)."""

    meter_serial = forms.CharField(
        max_length=64,
        required=False,
        label="Meter serial",
        help_text="As the meter signs it. Leave empty for a meter that names no serial.",
    )
    port = forms.IntegerField(
        required=False,
        min_value=1,
        label="Connector",
        help_text="Only for a meter that names no serial: the connector it measures.",
    )
    public_key = forms.CharField(
        max_length=5000,
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="As printed on the meter: hex, PEM, Base64 or oca:base16:asn1:…",
    )
    signing_method = forms.ChoiceField(
        required=False,
        label="Signing method",
        choices=[("", "From the key's curve")] + [(m, m) for m in sorted(ocmf.CURVES)],
    )

    def __init__(self, *args: Any, v201: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if v201:
            self.fields["port"].label = "EVSE"
            self.fields[
                "port"
            ].help_text = "Only for a meter that names no serial: the EVSE it measures."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        serial = (data.get("meter_serial") or "").strip()
        data["meter_serial"] = serial
        port = data.get("port")
        if "port" in self.errors:
            return data
        if serial and port is not None:
            raise forms.ValidationError(
                f"Give the meter serial or the {self.fields['port'].label.lower()}, not both."
            )
        if not serial and port is None:
            raise forms.ValidationError(
                f"Give the meter serial, or the {self.fields['port'].label.lower()} "
                "of a meter that names no serial."
            )
        return data


class MeterKeyConfirmForm(forms.Form):
    printed_key = forms.CharField(
        max_length=5000,
        required=False,
        label="Key printed on the meter (optional)",
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="If you paste it, it must be the key the charger reported.",
    )
    # The key this page showed: a key the charger reported after the page was loaded is not
    # confirmed by a press meant for the one shown.
    shown_key = forms.CharField(max_length=5000, required=False, widget=forms.HiddenInput)

    def clean_shown_key(self) -> bytes | None:
        text = self.cleaned_data["shown_key"].strip()
        if not text:
            return None
        try:
            return bytes.fromhex(text)
        except ValueError:
            self.add_error(None, "Reload the page and confirm again.")  # shown above the form
            return None
