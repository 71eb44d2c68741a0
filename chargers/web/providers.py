"""Answers this app's pages need from apps above it (billing), each from one named provider
registered in that app's AppConfig.ready() (backoffice.providers)."""

from __future__ import annotations

from typing import Any, Protocol

from backoffice.providers import Provider


class SessionPrice(Protocol):
    """The session's price so far (final once stopped): {"total", "currency", "final"}, or None
    when no rate applies (nothing is charged)."""

    def __call__(self, session: Any) -> dict[str, Any] | None: ...


session_price: Provider[SessionPrice] = Provider("session price")  # billing
