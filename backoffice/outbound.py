"""The one guard for outbound connections to URLs a host or partner configures (server-side
request forgery): proxy upstreams, PMS, MSP, OCPI partners, calendar feeds.

A host sets a URL and this server connects to it, with credentials, from inside the operator's
network; so such a URL must not reach that network. A URL is accepted only with the surface's
schemes on a host whose every DNS address is public (not private, loopback, link-local,
multicast, reserved, shared, unspecified, nor an IPv4 address embedded in IPv6), unless its host
or host:port is on the staff allow-list OUTBOUND_URL_ALLOWLIST (MSP_URL_ALLOWLIST is read too, its
older name); allow-listed hosts may also use the plain twin of a scheme (http for https, ws for
wss).

The check runs when the URL is saved (check_url) and again at every connection: the clients
below resolve the host themselves, refuse a non-public address before any packet is sent to it,
and connect to the very address they checked, so a DNS answer that changes between the check and
the connection cannot redirect the call. They never follow redirects and ignore proxy
environment variables. failure_words() says what went wrong in words a host can act on.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx
import websockets
from django.conf import settings
from websockets.exceptions import InvalidHandshake

BLOCKED_WORDS = (
    "The address points to a private network (or to this server itself), which this system does "
    "not connect to: use {who}'s public address."
)
NOT_FOUND_WORDS = "The host name of {who} could not be found: check the URL."
SCHEME_WORDS = "Use a URL starting with {schemes}."

_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}
_PLAIN_TWIN = {"https": "http", "wss": "ws"}


class OutboundBlocked(httpx.ConnectError):
    """The URL, or an address its host resolves to, may not be called; nothing was sent.

    A subclass of httpx.ConnectError, so callers treat it like an unreachable server.
    """

    words = BLOCKED_WORDS

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.words.format(who="the service"))

    def say(self, who: str) -> str:
        """The refusal in plain words, naming the service (e.g. "the backoffice")."""
        return self.words.format(who=who)


class BadUrl(OutboundBlocked):
    words = "Enter the full URL of {who} (no user name or password in it)."


class HostNotFound(OutboundBlocked):
    words = NOT_FOUND_WORDS


class SchemeRefused(OutboundBlocked):
    def __init__(self, schemes: tuple[str, ...]) -> None:
        self.words = SCHEME_WORDS.format(schemes=" or ".join(f"{s}://" for s in schemes))
        super().__init__(self.words)


# -- the pure part ----------------------------------------------------------------------------


def address_is_public(address: str) -> bool:
    """Return True if `address` (an IP literal) is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 and 2002:7f00:1:: reach the IPv4 address they embed.
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


def host_and_port(url: str) -> tuple[str, str, int]:
    """Return (scheme, lower-case host, port) of `url`; raise OutboundBlocked if it has none or
    carries credentials (they belong in the integration's password fields, not in the URL)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BadUrl() from None
    host = (parts.hostname or "").lower().strip("[]")
    scheme = parts.scheme.lower()
    if not host or parts.username is not None or parts.password is not None:
        raise BadUrl()
    return scheme, host, port or _DEFAULT_PORTS.get(scheme, 0)


# -- the allow-list and DNS ----------------------------------------------------------------------


def allowlist() -> frozenset[str]:
    """Return the allow-listed hosts and host:port entries, lower-case."""
    configured = [
        *getattr(settings, "OUTBOUND_URL_ALLOWLIST", []),
        *getattr(settings, "MSP_URL_ALLOWLIST", []),
    ]
    return frozenset(item.strip().lower() for item in configured if item and item.strip())


def is_allowed(host: str, port: int) -> bool:
    entries = allowlist()
    host = host.lower().strip("[]")
    return host in entries or f"{host}:{port}" in entries


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def public_addresses(host: str, port: int) -> list[str]:
    """Resolve `host`; return its addresses if every one is public, else raise OutboundBlocked."""
    addresses = _resolve(host, port)
    if not addresses:
        raise HostNotFound()
    if not all(address_is_public(a) for a in addresses):
        raise OutboundBlocked()
    return addresses


def pinned_address(host: str, port: int) -> str:
    """The address to connect to for `host`: checked unless allow-listed; raise OutboundBlocked."""
    if is_allowed(host, port):
        addresses = _resolve(host, port)
        if not addresses:
            raise HostNotFound()
        return addresses[0]
    return public_addresses(host, port)[0]


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def check_url(
    url: str,
    *,
    schemes: tuple[str, ...] = ("https",),
    resolve: bool = True,
    unresolvable_ok: bool = False,
) -> None:
    """Raise OutboundBlocked unless `url` may be called: one of `schemes` (or its plain twin on an
    allow-listed host) to a public host or an allow-listed one.

    resolve=False checks everything but the DNS answer (the clients check that when they connect);
    unresolvable_ok accepts a name without DNS records yet (refused at connect time if it still
    has none) while refusing one that resolves to a non-public address.
    """
    scheme, host, port = host_and_port(url)
    if is_allowed(host, port):
        if scheme not in schemes and scheme not in {_PLAIN_TWIN.get(s) for s in schemes}:
            raise SchemeRefused(schemes)
        return
    if _is_ip_literal(host) and not address_is_public(host):
        raise OutboundBlocked()  # the clearer reason first, whatever the scheme
    if scheme not in schemes:
        raise SchemeRefused(schemes)
    if not resolve:
        return
    try:
        public_addresses(host, port)
    except HostNotFound:
        if not unresolvable_ok:
            raise


# -- plain words for hosts -----------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _words_for(error: BaseException, who: str) -> str | None:
    if isinstance(error, OutboundBlocked):
        return error.say(who)
    if isinstance(error, ResponseTooLarge):
        return (
            f"The answer of {who} was larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MB: "
            "it was not read further."
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS handshake failed: the certificate of {who} is not valid for this address "
            "(expired, self-signed or issued for another name)."
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS handshake failed: {who} did not set up a secure connection on this port; "
            "check the scheme and port of the URL."
        )
    if isinstance(error, ConnectionRefusedError):
        return f"Connection refused by {who}: check the URL and port."
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return (
            f"No answer from {who} in time: check the URL and port, and that it accepts "
            "connections from this system."
        )
    if isinstance(error, socket.gaierror):
        return NOT_FOUND_WORDS.format(who=who)
    if isinstance(error, InvalidHandshake):
        return f"{who[:1].upper()}{who[1:]} did not answer as a websocket server: check the URL."
    return None


def failure_words(exc: BaseException, who: str = "the service") -> str:
    """What went wrong connecting to `who`, in words a host can act on (never exception text)."""
    for error in _chain(exc):
        words = _words_for(error, who)
        if words is not None:
            return words
    return f"Could not reach {who}: check the URL and that it is online."


# -- HTTP clients that connect only to the address they checked ----------------------------------


# A whole request's end (time.monotonic()), set by the clients below: httpx's timeout bounds each
# read, so a server answering a byte at a time within it (slowloris) held the caller without end.
_deadline: ContextVar[float | None] = ContextVar("outbound_deadline", default=None)
# A request's total time, as a multiple of the client's timeout unless given.
TOTAL_PER_TIMEOUT = 4


def _within(timeout: float | None, late: type[Exception]) -> float | None:
    """`timeout`, shortened to what is left of the request's total; raise `late` past it."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise late("the answer took longer than the request's total time")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _within(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _within(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _within(timeout, httpcore.ConnectTimeout)
        stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _AsyncDeadlineStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _GuardedSyncBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        # TLS still uses the URL's host name (httpcore passes it as server_hostname).
        address = pinned_address(host, port)
        timeout = _within(timeout, httpcore.ConnectTimeout)
        stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream)


class _GuardedAsyncBackend(httpcore.AnyIOBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        # Resolution blocks; run it off the event loop.
        address = await anyio.to_thread.run_sync(pinned_address, host, port)
        timeout = _within(timeout, httpcore.ConnectTimeout)
        stream = await super().connect_tcp(address, port, timeout, local_address, socket_options)
        return _AsyncDeadlineStream(stream)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


# The longest answer any configured URL may give (a partner's page of objects, a token list, a
# PMS page): a server that streams without end would otherwise fill this process's memory.
# Callers with a tighter bound keep theirs (calendar feeds 5 MB, a PMS page 20 MB, OCSP 4 KB).
MAX_RESPONSE_BYTES = 50 * 1024 * 1024


class ResponseTooLarge(httpx.ReadError):
    """The answer grew past MAX_RESPONSE_BYTES; a read error, so callers treat it as one."""


class _CappedStream(httpx.SyncByteStream):
    """The answer's body, cut at MAX_RESPONSE_BYTES and at the request's total time (a body read
    after `send` returned, as `client.stream()` does, still counts)."""

    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream, self._request = stream, request
        self._deadline = _deadline.get()

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        chunks = iter(self._stream)
        while True:
            token = _deadline.set(self._deadline)
            try:
                chunk = next(chunks, None)
            finally:
                _deadline.reset(token)
            if chunk is None:
                return
            seen += len(chunk)
            if seen > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge("the answer is too large", request=self._request)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _CappedAsyncStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream, self._request = stream, request
        self._deadline = _deadline.get()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        chunks = aiter(self._stream)
        while True:
            token = _deadline.set(self._deadline)
            try:
                chunk = await anext(chunks, None)
            finally:
                _deadline.reset(token)
            if chunk is None:
                return
            seen += len(chunk)
            if seen > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge("the answer is too large", request=self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


# httpx has no option for httpcore's network backend, so these transports build their
# connection pool themselves (what HTTPTransport.__init__ does, with the guarded backend).
class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=_GuardedSyncBackend()
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.stream = _CappedStream(response.stream, request)
        return response


class _GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(), network_backend=_GuardedAsyncBackend()
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        response.stream = _CappedAsyncStream(response.stream, request)
        return response


class _GuardedClient(httpx.Client):
    schemes: tuple[str, ...] = ("https",)
    total_s: float | None = None

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        check_url(str(request.url), schemes=self.schemes, resolve=False)
        token = _deadline.set(None if self.total_s is None else time.monotonic() + self.total_s)
        try:
            return super().send(request, **kwargs)
        finally:
            _deadline.reset(token)


class _GuardedAsyncClient(httpx.AsyncClient):
    schemes: tuple[str, ...] = ("https",)
    total_s: float | None = None

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        check_url(str(request.url), schemes=self.schemes, resolve=False)
        token = _deadline.set(None if self.total_s is None else time.monotonic() + self.total_s)
        try:
            return await super().send(request, **kwargs)
        finally:
            _deadline.reset(token)


def http_client(
    *, timeout: float, schemes: tuple[str, ...] = ("https",), total: float | None = None
) -> httpx.Client:
    """Return a synchronous client for configured URLs (checked, no redirects, no proxies): each
    read waits at most `timeout`, a whole request (its answer read to the end) at most `total`
    (TOTAL_PER_TIMEOUT x timeout unless given)."""
    client = _GuardedClient(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=_GuardedTransport()
    )
    client.schemes = schemes
    client.total_s = total if total is not None else timeout * TOTAL_PER_TIMEOUT
    return client


def async_http_client(
    *, timeout: float, schemes: tuple[str, ...] = ("https",), total: float | None = None
) -> httpx.AsyncClient:
    """Return an async client for configured URLs (checked, no redirects, no proxies), with the
    bounds of http_client()."""
    client = _GuardedAsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=_GuardedAsyncTransport()
    )
    client.schemes = schemes
    client.total_s = total if total is not None else timeout * TOTAL_PER_TIMEOUT
    return client


# -- websockets ------------------------------------------------------------------------------------

WS_SCHEMES = ("wss", "ws")


async def ws_connect(url: str, *, schemes: tuple[str, ...] = WS_SCHEMES, **kwargs: Any) -> Any:
    """Open a websocket to `url` at the address the guard checked (raise OutboundBlocked first).

    The TCP connection goes to that address; the Host header and TLS (SNI and certificate) still
    use the URL's host name. An explicit address also makes websockets refuse cross-origin
    redirects; proxy environment variables are ignored.
    """
    check_url(url, schemes=schemes, resolve=False)
    _scheme, host, port = host_and_port(url)
    address = await asyncio.to_thread(pinned_address, host, port)
    return await websockets.connect(url, host=address, port=port, proxy=None, **kwargs)
