"""The Proxy tab's forms; saving goes through chargers.proxy.services like the API and admin."""

from __future__ import annotations

from typing import Any

from django import forms

from chargers.proxy import rules
from chargers.proxy.models import Backoffice


class BackofficeForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="As your hosts know it, e.g. “Acme employer CSMS”."
    )
    url = forms.CharField(
        label="OCPP URL",
        max_length=400,
        help_text="The ws:// or wss:// address that backoffice gave you, without the station id (we append it).",
    )
    password = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="The charger's password at that backoffice (sent as HTTP Basic with the station id). "
        "Leave empty to keep the current one.",
    )
    role = forms.ChoiceField(
        choices=Backoffice.Role.choices,
        initial=Backoffice.Role.FOLLOWER,
        help_text="The Leader's answers reach the charger: it must recognise and accept the charging cards.",
    )
    allowed_actions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Commands a follower may send to the charger through us. A Leader may send any.",
    )

    def __init__(self, *args: Any, version: str = "1.6", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_actions"].choices = [(a, a) for a in rules.csms_actions(version)]


class LeaderTimeoutForm(forms.Form):
    proxy_leader_timeout_s = forms.IntegerField(
        label="Wait for the Leader (seconds)",
        min_value=1,
        max_value=60,
        help_text="After this, this system answers the charger in the Leader's place, and records that it did.",
    )
