"""Template context of driver pages."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest

from roaming.emsp_driving import DRIVER_ACCOUNTS_CACHE_KEY


def roaming(request: HttpRequest) -> dict[str, bool]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}

    def offered() -> bool:
        from roaming.models import EmspIdentity

        return EmspIdentity.objects.filter(driver_accounts=True).exists()

    # On every driver page (the header's "Other networks" link): cached, cleared on a change.
    return {"driver_roaming": bool(cache.get_or_set(DRIVER_ACCOUNTS_CACHE_KEY, offered, 300))}
