"""Energy on pages: exact Wh as reported (1234.56, never 1234.5600), kWh with 3 decimals."""

from typing import Any

from django import template

from chargers.ocpp.energy import kwh, wh_text

register = template.Library()


@register.filter
def wh(value: Any) -> str:
    """A register or an energy in Wh, as reported: 1234.56, 1000."""
    return wh_text(value)


@register.filter(name="kwh")
def kwh_filter(value: Any) -> str:
    """Wh as kWh with 3 decimals: 4444.34 -> 4.444."""
    result = kwh(value)
    return "" if result is None else str(result)
