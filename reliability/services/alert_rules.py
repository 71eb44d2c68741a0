"""Writes of alert rules from the portal (docs/reliability.md, "Alerts"): the rule and the
note of its addresses (confirmation links emailed once committed) in one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ..models import AlertRule
from . import recipients


@transaction.atomic
def alert_rule_save(
    *, rule: AlertRule | None, values: dict[str, Any], site_url: str = ""
) -> AlertRule:
    rule = rule if rule is not None else AlertRule()
    for name, value in values.items():
        setattr(rule, name, value)
    rule.save()
    recipients.rule_recipients_saved(rule, site_url=site_url)
    return rule


@transaction.atomic
def alert_rule_delete(*, rule: AlertRule) -> None:
    # Its alerts and deliveries go with it (CASCADE), as through the API.
    rule.delete()
