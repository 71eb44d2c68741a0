"""The portal's alert-rule form (docs/reliability.md, "Alerts"): the API's rule in plain words,
with the same checks (the outbound guard on the webhook, first aid only where it applies)."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from backoffice import outbound
from backoffice.models import Organization

from .models import AlertRule
from .services import alerts

Kind = AlertRule.Kind
MAX_EMAILS = 20
# Which kinds take a threshold, its words and bounds (the evaluation's defaults when empty).
THRESHOLDS: dict[str, tuple[str, float, float]] = {
    Kind.UPTIME_BELOW: ("percent", 1.0, 100.0),
    Kind.REBOOT_LOOP: ("boots in the window", 2.0, 100.0),
}
REMEDY_WORDS = dict(AlertRule.Remediation.choices)
KIND_WORDS = dict(Kind.choices)


class AlertRuleForm(forms.Form):
    organization: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=Organization.objects.none(), label="Organization"
    )
    kind = forms.ChoiceField(choices=Kind.choices, label="Alert me when")
    after_minutes = forms.IntegerField(
        min_value=1,
        max_value=60 * 24 * 60,
        initial=5,
        label="After (minutes)",
        help_text="How long the problem lasts before you are alerted. Reboot loop: the window "
        "the boots are counted in. Certificate expiring: how long before it expires.",
    )
    threshold = forms.FloatField(
        required=False,
        label="Threshold (optional)",
        help_text="Month's uptime below target: the percent (97 when empty). Reboot loop: how "
        "many boots in the window (3 when empty). Other alerts take none.",
    )
    emails = forms.CharField(
        required=False,
        label="Email these addresses",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line or separated by commas, at most 20. A member's own account "
        "address gets alerts at once; any other is first sent a link to confirm.",
    )
    webhook_url = forms.URLField(
        required=False,
        max_length=500,
        label="Webhook (optional)",
        assume_scheme="https",
        help_text="An https:// address of your own system: each alert is POSTed to it, signed.",
    )
    webhook_secret = forms.CharField(
        required=False,
        max_length=200,
        label="Webhook secret",
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs each webhook call. Never shown again; leave empty to keep the current one.",
    )
    remediation = forms.ChoiceField(
        choices=AlertRule.Remediation.choices,
        initial=AlertRule.Remediation.NONE,
        label="First aid",
        help_text="What to try before anyone looks: a faulted port can be reset or asked its "
        "status, a stuck session stopped. Other alerts take none.",
    )
    remediation_max_per_day = forms.IntegerField(
        min_value=1, max_value=10, initial=2, label="First aid at most (times per charger per day)"
    )
    enabled = forms.BooleanField(required=False, initial=True, label="On")

    def __init__(
        self, *args: Any, organizations: Any, rule: AlertRule | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rule = rule
        field = self.fields["organization"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = organizations
        if organizations.count() == 1:
            field.initial = organizations.first()
            field.widget = forms.HiddenInput()
        if rule is not None:
            self.initial.update(
                organization=rule.organization_id,
                kind=rule.kind,
                after_minutes=max(1, rule.after_s // 60),
                threshold=rule.threshold,
                emails="\n".join(rule.email or []),
                webhook_url=rule.webhook_url,
                remediation=rule.remediation,
                remediation_max_per_day=rule.remediation_max_per_day,
                enabled=rule.enabled,
            )

    def clean_emails(self) -> list[str]:
        parts = [p.strip().lower() for p in re.split(r"[\s,;]+", self.cleaned_data["emails"])]
        emails = list(dict.fromkeys(p for p in parts if p))
        validator = forms.EmailField()
        bad = []
        for email in emails:
            try:
                validator.clean(email)
            except forms.ValidationError:
                bad.append(email)
        if bad:
            raise forms.ValidationError(
                "Not an email address: " + ", ".join(f"“{b}”" for b in bad[:3]) + "."
            )
        if len(emails) > MAX_EMAILS:
            raise forms.ValidationError(f"At most {MAX_EMAILS} addresses per alert.")
        return emails

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"]
        if url:
            try:  # the one outbound guard, at save; the client checks again at every call
                outbound.check_url(url, schemes=("https",), unresolvable_ok=True)
            except outbound.OutboundBlocked as exc:
                raise forms.ValidationError(exc.say("your alert receiver")) from None
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind is None:
            return data
        self._check_threshold(kind, data.get("threshold"))
        remedy = data.get("remediation")
        allowed = alerts.REMEDIES_BY_KIND.get(kind, ("none",))
        if remedy and remedy not in allowed:
            words = ", ".join(REMEDY_WORDS[r] for r in allowed)
            self.add_error("remediation", f"First aid for “{KIND_WORDS[kind]}” can be: {words}.")
        has_secret = bool(data.get("webhook_secret")) or bool(
            self.rule is not None and self.rule.webhook_secret
        )
        if data.get("webhook_url") and not has_secret:
            self.add_error("webhook_secret", "A webhook needs a secret to sign its calls with.")
        return data

    def _check_threshold(self, kind: str, threshold: float | None) -> None:
        if threshold is None:
            return
        if kind not in THRESHOLDS:
            self.add_error("threshold", f"“{KIND_WORDS[kind]}” takes no threshold: leave it empty.")
            return
        words, low, high = THRESHOLDS[kind]
        if not low <= threshold <= high:
            self.add_error("threshold", f"The {words}: between {low:g} and {high:g}.")

    def values(self) -> dict[str, Any]:
        """The rule's fields from the cleaned form (an empty secret keeps the current one)."""
        data = self.cleaned_data
        values = {
            "organization": data["organization"],
            "kind": data["kind"],
            "after_s": data["after_minutes"] * 60,
            "threshold": data["threshold"],
            "email": data["emails"],
            "webhook_url": data["webhook_url"],
            "remediation": data["remediation"],
            "remediation_max_per_day": data["remediation_max_per_day"],
            "enabled": data["enabled"],
        }
        if data["webhook_secret"]:
            values["webhook_secret"] = data["webhook_secret"]
        elif not data["webhook_url"]:
            values["webhook_secret"] = ""
        return values
