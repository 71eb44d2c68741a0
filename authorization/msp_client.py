"""Outbound HTTP to mobility service providers, guarded against server-side request forgery.

A tenant sets its MSP's URL and the platform calls it, so the URL must not reach the
operator's own network. An MSP URL is accepted only as https:// on a host whose every
DNS address is public (not private, loopback, link-local, multicast, reserved, shared
or unspecified), unless its host is on the staff allow-list MSP_URL_ALLOWLIST (a setting,
or the environment variable of that name: comma-separated host or host:port entries;
allow-listed hosts may also use http://).

The URL is checked when it is saved (check_msp_url) and again on every connection: the
clients from msp_http_client() / msp_async_client() resolve the host themselves, refuse
a non-public address and connect to the address they checked, so a DNS answer that
changes after the save (or between check and connect) cannot redirect the call. They
never follow redirects and ignore proxy environment variables.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx
from django.conf import settings

MSP_URL_MESSAGE = (
    "Enter an https:// URL of the provider's public server; addresses in private, loopback, "
    "link-local or reserved networks are not allowed."
)


class BlockedMspUrl(httpx.ConnectError):
    """The MSP URL (or the address its host resolves to) is not allowed.

    A subclass of httpx.ConnectError, so callers treat it like an unreachable MSP.
    """

    def __init__(self, message: str = MSP_URL_MESSAGE) -> None:
        super().__init__(message)


def allowlist() -> frozenset[str]:
    """Return the allow-listed hosts and host:port entries, lower-case."""
    configured = settings.MSP_URL_ALLOWLIST
    return frozenset(item.strip().lower() for item in configured if item and item.strip())


def _allowed_host(host: str, port: int | None) -> bool:
    entries = allowlist()
    host = host.lower().strip("[]")
    return host in entries or (port is not None and f"{host}:{port}" in entries)


def address_is_public(address: str) -> bool:
    """Return True if `address` (an IP literal) is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return address_is_public(str(embedded))
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def public_addresses(host: str, port: int) -> list[str]:
    """Resolve `host`; return its addresses if every one is public, else raise BlockedMspUrl."""
    addresses = _resolve(host, port)
    if not addresses or not all(address_is_public(a) for a in addresses):
        raise BlockedMspUrl()
    return addresses


def check_msp_url(url: str, *, resolve: bool = True) -> None:
    """Raise BlockedMspUrl unless `url` may be called (https, public host or allow-listed).

    resolve=False checks everything but the DNS answer (the clients check that when they connect).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BlockedMspUrl() from None
    host = parts.hostname or ""
    if not host or parts.username is not None or parts.password is not None:
        raise BlockedMspUrl()
    default_port = 443 if parts.scheme == "https" else 80
    if _allowed_host(host, port or default_port):
        if parts.scheme not in ("https", "http"):
            raise BlockedMspUrl()
        return
    if parts.scheme != "https":
        raise BlockedMspUrl()
    if resolve:
        public_addresses(host, port or default_port)


# -- connection-time guard ---------------------------------------------------------------------


class _GuardedSyncBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if not _allowed_host(host, port):
            host = public_addresses(host, port)[0]
        return super().connect_tcp(host, port, timeout, local_address, socket_options)


class _GuardedAsyncBackend(httpcore.AnyIOBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        if not _allowed_host(host, port):
            # Resolution blocks; run it off the event loop.
            host = (await anyio.to_thread.run_sync(public_addresses, host, port))[0]
        return await super().connect_tcp(host, port, timeout, local_address, socket_options)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


# httpx has no option for httpcore's network backend, so these transports build their
# connection pool themselves (what HTTPTransport.__init__ does, with the guarded backend).
class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=_GuardedSyncBackend()
        )


class _GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(), network_backend=_GuardedAsyncBackend()
        )


class _GuardedClient(httpx.Client):
    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        check_msp_url(str(request.url), resolve=False)
        return super().send(request, **kwargs)


class _GuardedAsyncClient(httpx.AsyncClient):
    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        check_msp_url(str(request.url), resolve=False)
        return await super().send(request, **kwargs)


def msp_http_client(*, timeout: float) -> httpx.Client:
    """Return a synchronous client for MSP calls (checked URLs, no redirects, no proxies)."""
    return _GuardedClient(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=_GuardedTransport()
    )


def msp_async_client(*, timeout: float) -> httpx.AsyncClient:
    """Return an async client for MSP calls (checked URLs, no redirects, no proxies)."""
    return _GuardedAsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=_GuardedAsyncTransport()
    )
