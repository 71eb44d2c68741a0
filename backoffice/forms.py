"""Portal forms for the organization: its members (owners only), its settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone

from .models import Membership, Organization

STALE_EDIT = (
    "Someone else saved this at {time}, after you opened this page: your changes are not saved. "
    "Check the values below and save again to replace theirs."
)


class StaleEditMixin(forms.Form):
    """For a ModelForm editing a row with `updated_at` (list it first: `class F(StaleEditMixin,
    forms.ModelForm)`): a save from a page opened before someone else saved the row (another
    tab, a colleague, the API) is refused with a sentence instead of silently putting that
    page's old values back. Saving again then replaces theirs: the refusal moves the page to the
    row's current version. A declared field, so the admin's fieldsets show it too."""

    VERSION = "edited_version"
    edited_version = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = getattr(self, "instance", None)
        if instance is not None and instance.pk is not None:
            self.initial[self.VERSION] = instance.updated_at.isoformat()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        data: dict[str, Any] = self.cleaned_data if cleaned is None else cleaned
        instance = getattr(self, "instance", None)
        name = self.add_prefix(self.VERSION)
        posted = self.data.get(name)
        if instance is None or instance.pk is None or not posted:
            return data  # a new row, or a page from before this check
        current = (
            type(instance).objects.filter(pk=instance.pk).values_list("updated_at", flat=True)
        ).first()
        if current is not None and current.isoformat() != posted:
            posted_data: Any = self.data  # a QueryDict, read-only: a copy takes the new version
            moved = posted_data.copy()
            moved[name] = current.isoformat()
            self.data = moved
            shown = timezone.localtime(current).strftime("%H:%M on %d %b %Y")
            raise forms.ValidationError(
                " ".join([STALE_EDIT.format(time=shown), *self._saved_now(instance, data)]),
                code="stale",
            )
        return data

    def _saved_now(self, instance: Any, data: dict[str, Any]) -> list[str]:
        """Where this page differs from the row as saved now, with the saved value."""
        differ = []
        for name, field in self.fields.items():
            if name == self.VERSION or name not in data or not hasattr(instance, name):
                continue
            if isinstance(field, forms.ModelMultipleChoiceField):
                continue  # a relation's manager, not a value
            saved = getattr(instance, name)
            if saved != data[name]:
                differ.append(f"{field.label or name}: {_shown(saved)}")
        return [f"Saved now: {'; '.join(differ[:12])}."] if differ else []


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "empty"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%d %b %Y %H:%M")
    return str(value)


class InviteMemberForm(forms.Form):
    email = forms.EmailField(
        label="Email", help_text="They get an email with a link to choose their password."
    )
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        initial=Membership.Role.VIEWER,
        help_text="Owner: everything. Manager: everything but members and payouts. "
        "Viewer: read-only.",
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.prefix = f"org{organization.pk}"

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if Membership.objects.filter(
            organization=self.organization, user__username__iexact=email
        ).exists():
            raise forms.ValidationError(
                "This person is a member already; change their role in the list."
            )
        return email


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class EnergyReportingForm(forms.ModelForm):
    """Owners and managers: whether chargers are set to report their energy meter (its
    checkbox is on the Chargers page)."""

    class Meta:
        model = Organization
        fields = ["configure_energy_reporting"]


# One way to write a date on every page and in every form (issue 35 item 7): "24 Nov 2026",
# a 24 h clock. The browser's own date pickers follow the browser's language (mm/dd/yyyy in an
# American Chromium), so dates are typed as text; the usual European and ISO spellings are read.
DATE_INPUT_FORMATS = ["%d %b %Y", "%d %B %Y", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d"]
TIME_INPUT_FORMATS = ["%H:%M", "%H:%M:%S", "%H.%M"]


class LocalDateTimeField(forms.SplitDateTimeField):
    """A date and a time in the zone active for the request (the location's), as two text boxes:
    "24 Nov 2026" and "08:00"."""

    def __init__(self, *, label: str = "", **kwargs: Any) -> None:
        widget = forms.SplitDateTimeWidget(
            date_format="%d %b %Y",
            time_format="%H:%M",
            date_attrs={"placeholder": "24 Nov 2026", "autocomplete": "off", "size": "12"},
            time_attrs={
                "placeholder": "08:00",
                "inputmode": "numeric",
                "size": "6",
                "aria-label": f"{label} (time, 24 h)" if label else "Time (24 h)",
            },
        )
        super().__init__(
            widget=widget,
            label=label,
            input_date_formats=DATE_INPUT_FORMATS,
            input_time_formats=TIME_INPUT_FORMATS,
            error_messages={
                "invalid_date": "Write the date as 24 Nov 2026 or 24-11-2026.",
                "invalid_time": "Write the time on the 24 h clock, e.g. 08:00.",
            },
            **kwargs,
        )


def date_input() -> forms.DateInput:
    """A date typed as the pages show it ("24 Nov 2026"; 24-11-2026 and ISO are read too)."""
    return forms.DateInput(
        format="%d %b %Y", attrs={"placeholder": "24 Nov 2026", "autocomplete": "off"}
    )
