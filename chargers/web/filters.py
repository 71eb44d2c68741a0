"""Filters of the portal's charger and session lists (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from authorization.models import Token
from backoffice.forms import DATE_INPUT_FORMATS, date_input
from backoffice.models import Property
from backoffice.tenancy import readable
from chargers.models import Charger, ChargingSession
from chargers.web.selectors import chargers_for


def _is_faulted(charger: Charger) -> bool:
    return any(
        c.status == "Faulted" or c.error_code not in ("", "NoError")
        for c in charger.connectors.all()
    )


def charger_state(charger: Charger) -> str:
    """Return online / offline / faulted for list filters and badges."""
    if _is_faulted(charger):
        return "faulted"
    return "online" if charger.is_online() else "offline"


def chargers_with_state(user: Any) -> list[tuple[Charger, str]]:
    """The user's chargers with their state, loaded once per request: the dashboard's figures and
    its "Needs attention" (support) both need all of them, which at 1,000 chargers with their
    connectors is the page's largest read. Kept on the request's user object."""
    cached = getattr(user, "_chargers_with_state", None)
    if cached is None:
        cached = [(charger, charger_state(charger)) for charger in chargers_for(user)]
        user._chargers_with_state = cached
    return cached


class ChargerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Search")
    property = django_filters.ModelChoiceFilter(
        queryset=None, label="Location", empty_label="All locations"
    )
    status = django_filters.ChoiceFilter(
        choices=[("online", "Online"), ("offline", "Offline"), ("faulted", "Faulted")],
        method="filter_status",
        label="Status",
        empty_label="Any status",
    )

    class Meta:
        model = Charger
        fields = ["q", "property", "status"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters["property"].queryset = readable(
            Property.objects.select_related("organization"), user
        )
        for field in self.form.fields.values():
            field.required = False
        self.form.fields["q"].widget = forms.TextInput(
            attrs={"type": "search", "placeholder": "Station ID, name, serial"}
        )

    def filter_q(self, queryset: QuerySet[Charger], name: str, value: str) -> QuerySet[Charger]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(station_id__icontains=value)
            | Q(name__icontains=value)
            | Q(serial_number__icontains=value)
            | Q(property__name__icontains=value)
        )

    def filter_status(
        self, queryset: QuerySet[Charger], name: str, value: str
    ) -> QuerySet[Charger]:
        # Online depends on each charger's heartbeat interval; decide per row like the badge does.
        ids = [
            c.pk
            for c in queryset
            if charger_state(c) == value or (value == "offline" and not c.is_online())
        ]
        return queryset.filter(pk__in=ids)


class SessionFilter(django_filters.FilterSet):
    date_from = django_filters.DateFilter(
        field_name="started_at",
        lookup_expr="date__gte",
        label="From",
        widget=date_input(),
        input_formats=DATE_INPUT_FORMATS,
    )
    date_to = django_filters.DateFilter(
        field_name="started_at",
        lookup_expr="date__lte",
        label="To",
        widget=date_input(),
        input_formats=DATE_INPUT_FORMATS,
    )
    charger = django_filters.ModelChoiceFilter(
        queryset=None, label="Charger", empty_label="All chargers"
    )
    token = django_filters.CharFilter(method="filter_token", label="Token (UID)")
    status = django_filters.ChoiceFilter(
        choices=ChargingSession.Status.choices, label="Status", empty_label="Any status"
    )

    class Meta:
        model = ChargingSession
        fields = ["date_from", "date_to", "charger", "token", "status"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters["charger"].queryset = chargers_for(user).prefetch_related(None)
        self.form.fields["token"].widget = forms.TextInput(attrs={"placeholder": "e.g. 04A1B2C3"})

    def filter_token(
        self, queryset: QuerySet[ChargingSession], name: str, value: str
    ) -> QuerySet[ChargingSession]:
        from authorization.models import normalize_uid

        value = value.strip()
        if not value:
            return queryset
        key = normalize_uid(value)
        token_ids = Token.objects.filter(uid_normalized=key).values("pk")
        return queryset.filter(Q(id_tag__iexact=value) | Q(token__in=token_ids))

    @property
    def qs(self) -> QuerySet[ChargingSession]:
        queryset = super().qs
        form = self.form
        if form.is_valid():
            start, end = form.cleaned_data.get("date_from"), form.cleaned_data.get("date_to")
            if start and end and start > end:
                form.add_error("date_to", "The end date is before the start date.")
                return queryset.none()
        return queryset
