"""Template context for payment pages: whether payments are simulated (the sandbox gateway)."""

from __future__ import annotations

from django.http import HttpRequest

from .gateways import sandbox_in_use


def payments(request: HttpRequest) -> dict[str, bool]:
    return {"payments_test_mode": sandbox_in_use()}
