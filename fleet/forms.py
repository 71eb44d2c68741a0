"""Portal forms of firmware releases and campaigns (docs/firmware.md): the same rules as the API
(fleet.campaigns.api), for members who may write in the release's organization."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import QuerySet

from backoffice.models import Organization, Property

from .baselines import services as baseline_services
from .models import Baseline, FirmwareRelease

# What a charger list may be typed as: one station id per line, or separated by commas/spaces.
_SEPARATORS = re.compile(r"[\s,;]+")
MAX_STATION_IDS = 5000


def organization_choice(form: forms.ModelForm, organizations: QuerySet[Organization]) -> None:
    """The organization a new object goes to, among those the member may write in: no choice
    with one of them; an object that exists stays in its own."""
    field = form.fields["organization"]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = organizations
    saved = form.instance.pk is not None
    if saved or organizations.count() == 1:
        field.initial = form.instance.organization if saved else organizations.first()
        field.disabled = saved
        field.widget = forms.HiddenInput()


class ReleaseForm(forms.ModelForm):
    """A firmware image the chargers download over HTTPS (L01.FR.08), signed or not."""

    class Meta:
        model = FirmwareRelease
        fields = [
            "organization",
            "vendor",
            "model",
            "version",
            "location",
            "sha256",
            "signing_certificate",
            "signature",
            "notes",
        ]
        labels = {
            "location": "Download address (https)",
            "sha256": "SHA-256 of the file",
            "version": "Version",
        }
        help_texts = {
            "location": "Where the chargers download it. Hosting the file here instead: save the "
            "release with the vendor's address or any https address, then upload the file on "
            "its row.",
            "sha256": "64 lower-case hex digits (sha256sum of the file).",
            "vendor": "As the chargers report it in their BootNotification.",
            "model": "Empty: every model of the vendor.",
            "version": "The firmware version the chargers report once it is installed.",
            "signing_certificate": "Signed updates only: the manufacturer's PEM.",
            "signature": "Signed updates only: the file's Base64 signature.",
        }
        widgets = {
            "signing_certificate": forms.Textarea(attrs={"rows": 3}),
            "signature": forms.Textarea(attrs={"rows": 2}),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, organizations: QuerySet[Organization], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        organization_choice(self, organizations)
        self.fields["signing_certificate"].max_length = 5500  # 1.6 security whitepaper limits
        self.fields["signature"].max_length = 800

    def clean_location(self) -> str:
        value = str(self.cleaned_data["location"])
        if not value.lower().startswith("https://"):
            raise forms.ValidationError(
                "Chargers download firmware over HTTPS: an https:// address."
            )
        return value

    def clean_sha256(self) -> str:
        return str(self.cleaned_data["sha256"]).strip().lower()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("signing_certificate")) != bool(data.get("signature")):
            raise forms.ValidationError(
                "A signed release needs both its signing certificate and its signature."
            )
        return data


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    release = forms.ModelChoiceField(
        queryset=FirmwareRelease.objects.none(),
        help_text="Only chargers of its vendor (and model) are taken.",
    )
    properties = forms.ModelMultipleChoiceField(
        queryset=Property.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Locations",
        help_text="None ticked: every location of the release's organization.",
    )
    current_version = forms.CharField(
        max_length=50, required=False, help_text="Only chargers running this version now."
    )
    station_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Only these chargers",
        help_text="Station ids, one per line or separated by commas. Empty: every match.",
    )
    canary_percent = forms.IntegerField(
        min_value=1,
        max_value=100,
        initial=10,
        label="Canary (% of the chargers)",
        help_text="Updated first, at least one charger.",
    )
    wave_size = forms.IntegerField(min_value=1, max_value=10_000, initial=10)
    success_percent = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=95,
        label="Next wave while at least (% succeeded)",
    )
    max_failures = forms.IntegerField(
        min_value=1, max_value=10_000, initial=1, label="Halt at this many failures"
    )
    report_minutes = forms.IntegerField(
        min_value=1,
        max_value=7 * 24 * 60,
        initial=60,
        label="Silent for (minutes) counts as failed",
    )

    def __init__(
        self,
        *args: Any,
        releases: QuerySet[FirmwareRelease],
        properties: QuerySet[Property],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        release = self.fields["release"]
        chosen = self.fields["properties"]
        assert isinstance(release, forms.ModelChoiceField)
        assert isinstance(chosen, forms.ModelMultipleChoiceField)
        release.queryset = releases
        chosen.queryset = properties

    def clean_station_ids(self) -> list[str]:
        ids = [s for s in _SEPARATORS.split(self.cleaned_data.get("station_ids") or "") if s]
        if len(ids) > MAX_STATION_IDS:
            raise forms.ValidationError(f"At most {MAX_STATION_IDS} chargers.")
        return list(dict.fromkeys(ids))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        release = data.get("release")
        chosen = data.get("properties") or []
        if release is not None and any(
            p.organization_id != release.organization_id for p in chosen
        ):
            self.add_error("properties", "Choose locations of the release's organization.")
        return data


class MaintenanceWindowForm(forms.Form):
    """A location's daily window for firmware installs, in its local time; both empty: any time."""

    start = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    end = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("start") is None) != (data.get("end") is None):
            raise forms.ValidationError(
                "Give both the start and the end, or neither (firmware at any time)."
            )
        return data


MAX_LINES = 500


def settings_text(items: list[dict[str, Any]]) -> str:
    """A baseline's settings as the form's lines ("Key = value"; 2.0.1 "Component/Variable =
    value")."""
    return "\n".join(
        f"{item['component']}/{item['variable']} = {item['value']}"
        if item["component"]
        else f"{item['variable']} = {item['value']}"
        for item in items
    )


def expressible(items: list[dict[str, Any]]) -> bool:
    """Whether the lines say every setting whole (no instance, EVSE, connector or attribute
    other than Actual: those are edited through the API)."""
    return all(
        not item["component_instance"]
        and not item["variable_instance"]
        and not item["evse_id"]
        and not item["connector_id"]
        and (item["attribute_type"] or "Actual") == "Actual"
        for item in items
    )


def _setting_line(number: int, line: str, protocol: str) -> dict[str, Any]:
    name, equals, value = line.partition("=")
    name = name.strip()
    if not equals or not name:
        raise forms.ValidationError(f"Line {number}: write it as name = value.")
    component, slash, variable = name.rpartition("/")
    if protocol == Baseline.Protocol.V201 and not slash:
        raise forms.ValidationError(
            f"Line {number}: a 2.0.1 setting is Component/Variable = value."
        )
    item = {"component": component.strip(), "variable": variable.strip(), "value": value.strip()}
    for field, limit in (("component", 50), ("variable", 50), ("value", 1000)):
        if len(item[field]) > limit:
            raise forms.ValidationError(f"Line {number}: the {field} is longer than {limit}.")
    try:
        baseline_services.setting_check(protocol, item)
    except baseline_services.BaselineRefused as exc:
        raise forms.ValidationError(f"Line {number}: {exc}") from None
    return item


class BaselineForm(forms.ModelForm):
    """A vendor/model's configuration, its settings one per line."""

    settings = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        label="Values, one per line",
        help_text="OCPP 1.6: Key = value (for example MeterValueSampleInterval = 60). 2.0.1: "
        "Component/Variable = value (for example SampledDataCtrlr/TxUpdatedInterval = 60). "
        "Saving starts a new version; the chargers get it after their next boot with new "
        "firmware or when you apply it.",
    )

    class Meta:
        model = Baseline
        fields = [
            "organization",
            "name",
            "vendor",
            "model",
            "protocol",
            "apply_on_boot",
            "reboot_when_required",
        ]
        help_texts = {"vendor": "As the chargers report it in their BootNotification."}
        error_messages = {
            NON_FIELD_ERRORS: {
                "unique_together": "This vendor/model already has a baseline on this protocol."
            }
        }

    def __init__(self, *args: Any, organizations: QuerySet[Organization], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        organization_choice(self, organizations)

    def clean_settings(self) -> list[dict[str, Any]]:
        lines = [
            (number, line.strip())
            for number, line in enumerate(
                str(self.cleaned_data.get("settings") or "").splitlines(), 1
            )
            if line.strip() and not line.strip().startswith("#")
        ]
        if len(lines) > MAX_LINES:
            raise forms.ValidationError(f"At most {MAX_LINES} values.")
        protocol = str(self.data.get(self.add_prefix("protocol")) or self.instance.protocol or "")
        if protocol not in Baseline.Protocol.values:
            return []  # the protocol's own error says it
        return [_setting_line(number, line, protocol) for number, line in lines]
