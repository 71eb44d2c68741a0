"""Portal forms of a charger's security: profile, log upload and signed firmware update."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms

from chargers.models import Charger
from chargers.ocpp.protocol import format_datetime


class SecurityProfileForm(forms.Form):
    security_profile = forms.TypedChoiceField(coerce=int, label="Security profile")

    def __init__(self, *args: Any, charger: Charger, staff: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["security_profile"]
        assert isinstance(field, forms.TypedChoiceField)
        # Hosts may only raise it; 0 and lowering are for staff (services.charger_set_security_profile).
        field.choices = [
            (value, label)
            for value, label in Charger.SecurityProfile.choices
            if staff
            or (value >= charger.security_profile and value != Charger.SecurityProfile.NONE)
        ]
        field.initial = charger.security_profile


class GetLogForm(forms.Form):
    log_type = forms.ChoiceField(
        choices=[("SecurityLog", "Security log"), ("DiagnosticsLog", "Diagnostics log")],
        label="Log",
    )
    remote_location = forms.URLField(
        max_length=512,
        label="Upload to",
        assume_scheme="https",
        help_text="The charger uploads the file here (an FTP(S) or HTTP(S) URL it can reach).",
    )
    oldest = forms.DateTimeField(
        required=False,
        label="From (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    latest = forms.DateTimeField(
        required=False,
        label="Until (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def payload(self, request_id: int) -> dict:
        data = self.cleaned_data
        log: dict = {"remoteLocation": data["remote_location"]}
        if data.get("oldest"):
            log["oldestTimestamp"] = format_datetime(data["oldest"])
        if data.get("latest"):
            log["latestTimestamp"] = format_datetime(data["latest"])
        return {"logType": data["log_type"], "requestId": request_id, "log": log}


class SignedFirmwareForm(forms.Form):
    location = forms.URLField(max_length=512, label="Firmware URL", assume_scheme="https")
    retrieve_at = forms.DateTimeField(
        required=False,
        label="Download from (optional, default now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    signing_certificate = forms.CharField(
        max_length=5500,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Signing certificate (PEM)",
        help_text="The manufacturer's firmware signing certificate.",
    )
    signature = forms.CharField(
        max_length=800, widget=forms.Textarea(attrs={"rows": 2}), label="Signature (base64)"
    )

    def clean_signing_certificate(self) -> str:
        value = self.cleaned_data["signing_certificate"].strip()
        if "BEGIN CERTIFICATE" not in value:
            raise forms.ValidationError(
                "Paste the PEM certificate (-----BEGIN CERTIFICATE----- ...)."
            )
        return value

    def payload(self, request_id: int, now: datetime) -> dict:
        data = self.cleaned_data
        return {
            "requestId": request_id,
            "firmware": {
                "location": data["location"],
                "retrieveDateTime": format_datetime(data.get("retrieve_at") or now),
                "signingCertificate": data["signing_certificate"],
                "signature": data["signature"].strip(),
            },
        }
