"""Portal forms for tokens, local token groups, roaming search and mobility providers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone

from backoffice.forms import LocalDateTimeField, StaleEditMixin
from backoffice.models import Organization
from backoffice.tenancy import TenantFormMixin

from .decisions import NOT_AN_EMAID, emaid_issuer
from .models import Token, TokenGroup, normalize_uid, typed_uid


class OrganizationChoiceMixin:
    """Hides the organization field when the user may edit only one organization."""

    fields: dict[str, forms.Field]  # the form's (mixed into a ModelForm)

    def _setup_organization(self) -> None:
        field = self.fields["organization"]
        assert isinstance(field, forms.ModelChoiceField), "the forms declare it a model choice"
        organizations = field.queryset
        assert organizations is not None  # declared with Organization.objects.all()
        if organizations.count() == 1:
            only = organizations.first()
            assert only is not None  # the one counted
            self.fields["organization"].initial = only.pk
            self.fields["organization"].widget = forms.HiddenInput()


TOKEN_EXISTS = "This UID is already a token of your organization. Search for it to edit it."
GROUP_EXISTS = "A group with this name exists already."


class TokenCreateForm(TenantFormMixin, OrganizationChoiceMixin, forms.ModelForm):
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())
    groups = forms.ModelMultipleChoiceField(
        queryset=TokenGroup.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Local token groups",
    )

    expires_at = LocalDateTimeField(label="Expires at", required=False)

    class Meta:
        model = Token
        fields = ["organization", "uid", "label", "type", "valid", "expires_at"]
        labels = {"uid": "UID", "valid": "Valid"}
        help_texts = {
            "uid": "The chip number as the charger reads it, e.g. 04A1B2C3 (the idTag in the "
            "logs); for a Plug & Charge contract, its eMAID, e.g. DE-8EO-C12345678-9."
        }

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self._setup_organization()
        kind = self.fields["type"]
        assert isinstance(kind, forms.ChoiceField), "Token.type has choices"
        kind.choices = [c for c in Token.Type.choices if c[0] != Token.Type.GUEST]
        self.fields["expires_at"].required = False

    def clean_uid(self) -> str:
        uid = typed_uid(self.cleaned_data["uid"])
        if not normalize_uid(uid):
            raise forms.ValidationError("Enter the card's UID.")
        if len(uid) > 20:
            raise forms.ValidationError("OCPP 1.6 idTags are at most 20 characters.")
        return uid

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        org, uid = data.get("organization"), data.get("uid")
        if (
            org
            and uid
            and Token.objects.filter(organization=org, uid_normalized=normalize_uid(uid)).exists()
        ):
            self.add_error("uid", TOKEN_EXISTS)
        if uid and data.get("type") == Token.Type.EMAID and emaid_issuer(uid) is None:
            self.add_error("uid", NOT_AN_EMAID)
        for group in data.get("groups") or []:
            if org and group.organization_id != org.pk:
                self.add_error("groups", f"The group “{group}” belongs to another organization.")
        return data


class TokenEditForm(StaleEditMixin, forms.ModelForm):
    """A card's label, validity, block and expiry. A page opened before someone else saved the
    card (a colleague blocking it as lost) cannot unblock it by saving a label."""

    expires_at = LocalDateTimeField(
        label="Expires at", required=False, help_text="Leave empty for no expiry."
    )

    class Meta:
        model = Token
        fields = ["label", "valid", "blocked", "expires_at", "single_session"]
        labels = {"valid": "Valid", "blocked": "Blocked"}

        help_texts = {
            "valid": "Untick when the card may no longer charge (e.g. lost); the charger is told on its next request.",
            "blocked": "A blocked card is refused everywhere, even if it is valid.",
            "expires_at": "Leave empty for no expiry.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].required = False


class TokenGroupForm(TenantFormMixin, OrganizationChoiceMixin, forms.ModelForm):
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())

    class Meta:
        model = TokenGroup
        fields = ["organization", "name"]
        labels = {"name": "Group name"}

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self._setup_organization()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        org, name = data.get("organization"), (data.get("name") or "").strip()
        if org and name and TokenGroup.objects.filter(organization=org, name__iexact=name).exists():
            self.add_error("name", GROUP_EXISTS)
        return data

    def validate_unique(self) -> None:
        # Checked case-insensitively in clean(); the model constraint is the last line of defence.
        pass

    def _get_validation_exclusions(self) -> set[str]:
        # The model's own check of unique_group_name_ci names no field: a group of that name
        # stored after clean() looked (the form sent twice at once) was a refusal the page did
        # not show. clean() says it on the name; a group stored later still, the view's catch of
        # the constraint does.
        excluded: set[str] = super()._get_validation_exclusions()  # type: ignore[misc]
        return {*excluded, "name"}


class AddTokenForm(forms.Form):
    uid = forms.CharField(
        max_length=36,
        label="UID",
        help_text="The chip number the charger reads, e.g. 04A1B2C3 (spaces or colons are fine).",
    )

    def clean_uid(self) -> str:
        uid = typed_uid(self.cleaned_data["uid"])
        if not normalize_uid(uid):
            raise forms.ValidationError("Enter the card's UID.")
        if len(uid) > 20:
            raise forms.ValidationError("OCPP 1.6 idTags are at most 20 characters.")
        return uid


class RoamingSearchForm(forms.Form):
    uid = forms.CharField(
        max_length=36,
        label="UID",
        min_length=2,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. 04A1B2C3"}),
    )


def token_state(token: Token, now: datetime | None = None) -> tuple[str, str]:
    """Return (label, badge class) saying whether the token may charge and why not."""
    now = now or timezone.now()
    if token.blocked:
        return "Blocked", "badge-bad"
    if not token.valid:
        return "Not valid", "badge-bad"
    if token.expires_at and token.expires_at <= now:
        return "Expired", "badge-bad"
    if token.msp_id and (msp := token.msp) is not None and msp.blocked:
        return "Provider blocked", "badge-bad"
    return "Valid", "badge-ok"
