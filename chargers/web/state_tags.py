"""A charger's state on pages ({% load charger_state %}): the tab header asks the charger itself,
so no view can render it without the state (issue 47: the Uptime tab said Offline)."""

from typing import Any

from django import template

from chargers.web.filters import charger_state

register = template.Library()


@register.filter(name="charger_state")
def charger_state_filter(charger: Any) -> str:
    """online / offline / faulted, as the charger list and the dashboard say it."""
    return charger_state(charger)
