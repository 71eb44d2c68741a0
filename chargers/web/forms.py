"""Portal forms for chargers: commands, log search, whitelisting, charger and location settings."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from django import forms
from django.db import models, transaction
from django.db.models import QuerySet

from authorization.models import Token, TokenGroup, typed_uid
from authorization.services import token_group_touch
from backoffice.models import Property
from backoffice.tenancy import TenantFormMixin
from chargers.models import Charger, ChargingSession

M = TypeVar("M", bound=models.Model)


def of_organization(queryset: QuerySet[M], organization_id: int | None) -> QuerySet[M]:
    """The rows of one organization. No organization (a charger not placed at a property yet)
    means the rows of none, as `filter(organization_id=None)` reads in Django."""
    if organization_id is None:
        return queryset.filter(organization__isnull=True)
    return queryset.filter(organization_id=organization_id)


class TokenChoiceField(forms.ModelChoiceField):
    """A card by its UID and label."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.uid} {obj.label}".strip()


class CommandForm(TenantFormMixin, forms.Form):
    REMOTE_START = "RemoteStartTransaction"
    REMOTE_STOP = "RemoteStopTransaction"
    RESET = "Reset"
    UNLOCK = "UnlockConnector"
    CLEAR_CACHE = "ClearCache"
    PUSH_LOCAL_LIST = "SendLocalList"

    ACTIONS = [
        (REMOTE_START, "Remote start"),
        (REMOTE_STOP, "Remote stop"),
        (RESET, "Reset"),
        (UNLOCK, "Unlock connector"),
        (CLEAR_CACHE, "Clear cache"),
        (PUSH_LOCAL_LIST, "Push local list"),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    connector_id = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Connector"
    )
    token = TokenChoiceField(
        queryset=Token.objects.none(), required=False, label="Token", empty_label="Choose a token"
    )
    transaction_id = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Session"
    )
    reset_type = forms.ChoiceField(
        choices=[("Soft", "Soft"), ("Hard", "Hard")],
        required=False,
        initial="Soft",
        label="Reset type",
    )

    def __init__(self, *args: Any, charger: Charger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.charger = charger
        self.connectors = [c.connector_id for c in charger.connectors.all() if c.connector_id > 0]
        connector = self.fields["connector_id"]
        assert isinstance(connector, forms.TypedChoiceField)
        connector.choices = [("", "Choose a connector")] + [
            (c, f"Connector {c}") for c in self.connectors
        ]
        self.restrict(
            "token",
            (
                of_organization(Token.objects.filter(blocked=False), charger.organization_id)
                .exclude(type=Token.Type.GUEST)
                .order_by("uid")
            ),
        )
        active = ChargingSession.objects.filter(
            charger=charger, status=ChargingSession.Status.ACTIVE
        )
        transaction_field = self.fields["transaction_id"]
        assert isinstance(transaction_field, forms.TypedChoiceField)
        transaction_field.choices = [("", "Choose a running session")] + [
            (s.transaction_id, f"Connector {s.connector_id}: {s.id_tag} (tx {s.transaction_id})")
            for s in active
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        action = data.get("action")
        if action == self.REMOTE_START:
            if not data.get("token"):
                self.add_error("token", "Choose the token to start the session for.")
            if len(self.connectors) > 1 and not data.get("connector_id"):
                self.add_error("connector_id", "Choose the connector to start.")
        elif action == self.REMOTE_STOP and not data.get("transaction_id"):
            self.add_error("transaction_id", "Choose the running session to stop.")
        elif action == self.UNLOCK and not data.get("connector_id"):
            self.add_error("connector_id", "Choose the connector to unlock.")
        elif action == self.RESET and data.get("reset_type") not in ("Soft", "Hard"):
            self.add_error("reset_type", "Choose Soft or Hard.")
        return data

    def payload(self) -> dict[str, Any]:
        data = self.cleaned_data
        action = data["action"]
        if action == self.REMOTE_STOP:
            return {"transactionId": data["transaction_id"]}
        if action == self.RESET:
            return {"type": data["reset_type"]}
        if action == self.UNLOCK:
            return {"connectorId": data["connector_id"]}
        return {}


class LogFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Action (StartTransaction) or idTag"}
        ),
    )
    direction = forms.ChoiceField(
        required=False,
        choices=[("", "Both directions"), ("in", "From charger"), ("out", "To charger")],
    )
    type = forms.ChoiceField(
        required=False,
        label="Message type",
        choices=[
            ("", "All types"),
            ("CALL", "CALL"),
            ("CALLRESULT", "CALLRESULT"),
            ("CALLERROR", "CALLERROR"),
        ],
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    link = forms.ChoiceField(required=False, label="Connection", choices=[("", "All")])
    invalid = forms.BooleanField(
        required=False,
        label="Invalid only",
        help_text="Only cards the answer refused (idTagInfo / idTokenInfo not Accepted)",
    )

    def __init__(
        self, *args: Any, backoffices: list[tuple[int, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # Behind the proxy: all frames, only the charger's own link, or one upstream backoffice.
        link = self.fields["link"]
        assert isinstance(link, forms.ChoiceField)
        link.choices = [
            ("", "All connections"),
            ("charger", "Charger ↔ this system"),
            *((str(pk), f"This system ↔ {name}") for pk, name in backoffices or []),
        ]


class WhitelistForm(TenantFormMixin, forms.Form):
    """Whitelist a UID from a log row: into any of the organization's groups, or a new one."""

    uid = forms.CharField(max_length=36, label="UID")
    group = forms.ModelChoiceField(
        queryset=TokenGroup.objects.none(),
        label="Local token group",
        empty_label="New group…",
        required=False,
    )
    new_group = forms.CharField(max_length=100, required=False, label="New group name")
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        organization_id: int | None,
        restricting: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.restrict(
            "group", of_organization(TokenGroup.objects.order_by("name"), organization_id)
        )
        self.organization_id = organization_id
        self.restricting = restricting

    def groups(self) -> list[TokenGroup]:
        """The groups a UID may go into: the organization's."""
        field = self.fields["group"]
        assert isinstance(field, forms.ModelChoiceField) and field.queryset is not None
        return list(field.queryset)

    def group_choices(self) -> list[tuple[TokenGroup, bool]]:
        """(group, restricts this charger), the restricting groups first: the ones that let the card in."""
        if not hasattr(self, "_choices"):  # rendered once per log row: query once
            groups = self.groups()
            self._choices = sorted(
                ((g, g.pk in self.restricting) for g in groups), key=lambda pair: not pair[1]
            )
        return self._choices

    def clean_uid(self) -> str:
        uid = typed_uid(self.cleaned_data["uid"])
        if not uid:
            raise forms.ValidationError("The UID is empty.")
        return uid

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        name = (data.get("new_group") or "").strip()
        data["new_group"] = name
        if name:
            # A typed name wins over the list (whose first group is preselected).
            data["group"] = None
            if of_organization(
                TokenGroup.objects.filter(name__iexact=name), self.organization_id
            ).exists():
                self.add_error(
                    "new_group", f"A group named “{name}” exists already: choose it in the list."
                )
        elif data.get("group") is None and "group" not in self.errors:
            self.add_error("new_group", "Choose a group or type a name for a new one.")
        return data


class ChargerSettingsForm(TenantFormMixin, forms.ModelForm):
    roaming_enabled = forms.NullBooleanField(
        required=False,
        label="Roaming at this charger",
        widget=forms.Select(
            choices=[("unknown", "Follow the location"), ("true", "On"), ("false", "Off")]
        ),
    )
    guest_charging_enabled = forms.NullBooleanField(
        required=False,
        label="Guest charging at this charger",
        widget=forms.Select(
            choices=[("unknown", "Follow the location"), ("true", "On"), ("false", "Off")]
        ),
    )

    class Meta:
        model = Charger
        fields = [
            "name",
            "access_mode",
            "roaming_enabled",
            "guest_charging_enabled",
            "token_groups",
        ]
        widgets = {"token_groups": forms.CheckboxSelectMultiple}
        labels = {"token_groups": "Restrict to local token groups"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.restrict(
            "token_groups", of_organization(TokenGroup.objects.all(), self.instance.organization_id)
        )

    @transaction.atomic
    def save(self, commit: bool = True) -> Charger:
        before = (
            set(self.instance.token_groups.values_list("pk", flat=True))
            if self.instance.pk
            else set()
        )
        charger = super().save(commit=commit)
        after = set(charger.token_groups.values_list("pk", flat=True))
        # The charger's local list depends on its groups: bump them so it is pushed again.
        token_group_touch(group_ids=sorted(before | after))
        return charger


class ChargerAddForm(forms.Form):
    """Portal "Add charger": the Station ID is checked by chargers.security.services.station_id_problem,
    the same rules as the API."""

    station_id = forms.CharField(
        max_length=48,
        label="Station ID",
        help_text="Exactly as configured in the charger (its OCPP identity): letters, digits and * - _ = + | @ .",
    )
    name = forms.CharField(
        max_length=200, required=False, label="Name", help_text="e.g. Entrance left"
    )
    security_profile = forms.TypedChoiceField(
        coerce=int,
        initial=1,
        label="Security profile",
        choices=[
            (1, "1 – password (Basic auth)"),
            (2, "2 – TLS + password"),
            (3, "3 – TLS client certificate"),
        ],
        help_text="Profiles 1 and 2 get a generated password, shown once on the setup card.",
    )

    def clean_station_id(self) -> str:
        from chargers.security.services import station_id_problem

        value = self.cleaned_data["station_id"].strip()
        problem = station_id_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value


class ReimbursementForm(forms.Form):
    """Locations › Reimbursement: a card that may charge (and be reimbursed) at chosen chargers here."""

    uid = forms.CharField(max_length=36, label="Card UID")
    label = forms.CharField(
        max_length=200, required=False, label="Label", help_text="e.g. the employee's name"
    )
    stations = forms.MultipleChoiceField(
        label="At these chargers",
        widget=forms.CheckboxSelectMultiple,
        help_text="The card then charges only at its allowed chargers (here and any set elsewhere).",
    )

    # Above this many chargers a box per charger is a wall of checkboxes (and a slow page): the
    # station ids are typed instead, or * for all of them.
    CHECKBOXES_UP_TO = 50

    def __init__(self, *args: Any, station_ids: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.station_ids = list(station_ids)
        if len(self.station_ids) > self.CHECKBOXES_UP_TO:
            self.fields["stations"] = forms.CharField(
                label="At these chargers",
                initial="*",
                widget=forms.Textarea(attrs={"rows": 3}),
                help_text=f"Station IDs separated by commas or spaces, or * for all {len(self.station_ids)} "
                "chargers here. The card then charges only at its allowed chargers (here and any set "
                "elsewhere).",
            )
            return
        # Only this location's chargers: another station id in the POST is not a choice (400).
        stations = self.fields["stations"]
        assert isinstance(stations, forms.MultipleChoiceField)
        stations.choices = [(s, s) for s in self.station_ids]
        stations.initial = list(self.station_ids)

    def clean_stations(self) -> list[str]:
        value = self.cleaned_data["stations"]
        if isinstance(value, list):  # the checkboxes: Django checked the choices
            return value
        typed = [part for part in re.split(r"[\s,;]+", value.strip()) if part]
        if typed == ["*"]:
            return list(self.station_ids)
        unknown = sorted(set(typed) - set(self.station_ids))
        if unknown:
            raise forms.ValidationError(
                f"Not a charger at this location: {', '.join(unknown[:5])}"
                + (" …" if len(unknown) > 5 else "")
            )
        if not typed:
            raise forms.ValidationError("Name at least one charger, or * for all of them.")
        return list(dict.fromkeys(typed))

    def clean_uid(self) -> str:
        uid = typed_uid(self.cleaned_data["uid"])
        if not uid:
            raise forms.ValidationError("The UID is empty.")
        return uid


class LocationAccessForm(TenantFormMixin, forms.ModelForm):
    restricted_token_groups = forms.ModelMultipleChoiceField(
        queryset=TokenGroup.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Restricted token groups",
        help_text="When any is ticked, chargers here accept only cards in these groups.",
    )

    class Meta:
        model = Property
        fields = ["roaming_enabled", "guest_charging_enabled"]
        labels = {"roaming_enabled": "Public (roaming)", "guest_charging_enabled": "Guest charging"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.restrict(
            "restricted_token_groups",
            of_organization(TokenGroup.objects.all(), self.instance.organization_id),
        )
        if self.instance.pk and not self.is_bound:
            self.initial["restricted_token_groups"] = list(
                self.instance.restricted_token_groups.values_list("pk", flat=True)
            )

    @transaction.atomic
    def save(self, commit: bool = True) -> Property:
        prop = super().save(commit=True)
        before = set(prop.restricted_token_groups.values_list("pk", flat=True))
        chosen = self.cleaned_data["restricted_token_groups"]
        prop.restricted_token_groups.set(chosen)
        after = {g.pk for g in chosen}
        token_group_touch(group_ids=sorted(before ^ after))
        return prop
