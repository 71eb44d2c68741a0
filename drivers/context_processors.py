"""Template context of driver pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from backoffice import shared_cache
from roaming.emsp_driving import DRIVER_ACCOUNTS_CACHE_KEY


def _offered() -> bool:
    def read() -> bool:
        from roaming.models import EmspIdentity

        return EmspIdentity.objects.filter(driver_accounts=True).exists()

    # While Redis is down, asked of the database (a driver's page still opens).
    return bool(
        shared_cache.use(lambda store: store.get_or_set(DRIVER_ACCOUNTS_CACHE_KEY, read, 300), read)
    )


def roaming(request: HttpRequest) -> dict[str, Any]:
    """`driver_roaming`: whether the driver header shows "Other networks". Read only where a
    template asks (lazily: host pages never do), cached and cleared on a change."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"driver_roaming": SimpleLazyObject(_offered)}
