"""Configuration checks of site power (`manage.py check`, and every start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def lease_outlasts_its_margin(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A lease is renewed when half its time is gone and its charger is reserved its safe default
    `lease_margin()` before it ends (docs/power.md, "The lease rule"): with a lease shorter than
    twice the margin, every charger is reserved all the time and no site shares its budget."""
    from .services import lease_margin

    margin = lease_margin().total_seconds()
    lease = float(settings.POWER_LEASE_SECONDS)
    if lease >= 2 * margin:
        return []
    return [
        checks.Warning(
            f"POWER_LEASE_SECONDS ({lease:.0f}) is shorter than twice the lease margin "
            f"({margin:.0f} s: POWER_COMMAND_TIMEOUT + POWER_REFRESH_SECONDS + the two power "
            "sweeps): every charger would be reserved its safe default all the time.",
            hint="Raise POWER_LEASE_SECONDS or lower those settings.",
            id="power.W001",
        )
    ]
