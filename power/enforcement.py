"""Enforcement of the allocation on the chargers (OCPP smart charging).

Placeholder: the "enforce" branch replaces this module with the real one (profiles to chargers,
safe default, refusals). power.services.recompute calls `enforce` after each allocation is
committed.
"""

from __future__ import annotations

from collections.abc import Sequence

from .allocation import Limit


def enforce(property_id: int, limits: Sequence[Limit]) -> None:
    """Send the limits in force to the chargers of the property (placeholder: nothing)."""
