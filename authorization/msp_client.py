"""Outbound HTTP to mobility service providers: through the project's one outbound guard.

A tenant sets its MSP's URL and the platform calls it, so the URL must not reach the operator's
own network: backoffice/outbound.py checks it when it is saved (check_msp_url) and again on every
connection (msp_http_client / msp_async_client), https:// to a public address or a host on the
staff allow-list OUTBOUND_URL_ALLOWLIST (MSP_URL_ALLOWLIST, its older name, still works).
"""

from __future__ import annotations

import httpx

from backoffice import outbound

MSP_URL_MESSAGE = (
    "Enter an https:// URL of the provider's public server; addresses in private, loopback, "
    "link-local or reserved networks are not allowed."
)

# The guard's refusal; a subclass of httpx.ConnectError, so callers treat it like an unreachable MSP.
BlockedMspUrl = outbound.OutboundBlocked
address_is_public = outbound.address_is_public
allowlist = outbound.allowlist


def check_msp_url(url: str, *, resolve: bool = True) -> None:
    """Raise BlockedMspUrl unless `url` may be called (https, public host or allow-listed)."""
    outbound.check_url(url, schemes=("https",), resolve=resolve)


def msp_http_client(*, timeout: float) -> httpx.Client:
    return outbound.http_client(timeout=timeout)


def msp_async_client(*, timeout: float) -> httpx.AsyncClient:
    return outbound.async_http_client(timeout=timeout)
