"""Outbound OCPI calls to partners: headers, envelope check, the OCPI log.

Every partner URL goes through the project's outbound guard, here and only here: a URL given
to us (portal form, API) is checked by check_partner_url(), and every call uses the guarded
client, which checks again at connect time (backoffice.outbound: https to a public address, or a
host on the staff allow-list OUTBOUND_URL_ALLOWLIST; no redirects, no proxies; docs/security.md).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings

from backoffice import outbound

from . import ocpi
from .models import OcpiLog, Partner
from .transport import redact


class PartnerCallError(Exception):
    """The partner could not be reached or did not accept the request."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        ocpi_status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.ocpi_status = ocpi_status
        # Seconds the partner asked us to wait (its Retry-After on a 429 or 503), capped.
        self.retry_after = retry_after


class BlockedPartnerUrl(ValueError):
    """A partner URL the outbound guard refuses (private, loopback, link-local, not https)."""


PARTNER_URL_MESSAGE = (
    "Enter an https:// URL of the partner's public server; addresses in private, loopback, "
    "link-local or reserved networks are not allowed."
)


def check_partner_url(url: str) -> None:
    """Raise BlockedPartnerUrl unless the outbound guard lets us call `url`."""
    try:
        outbound.check_url(url, schemes=("https",))
    except outbound.HostNotFound as exc:
        raise BlockedPartnerUrl(exc.say("the partner")) from None
    except outbound.OutboundBlocked:
        raise BlockedPartnerUrl(PARTNER_URL_MESSAGE) from None


def unreachable_words(exc: httpx.HTTPError) -> str:
    """Return what went wrong in words a host can act on (never the exception's text)."""
    return outbound.failure_words(exc, "the partner")


@dataclass(frozen=True)
class Answer:
    http_status: int
    ocpi_status: int
    data: Any
    headers: httpx.Headers


def _loggable(text: str) -> str:
    """`text` as a column keeps it: a NUL or a lone surrogate written as its escape."""
    if not ocpi.text_problem(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _log_answer(log: OcpiLog, module: str, payload: Any, text: str) -> None:
    """Keep the partner's answer in the log. One PostgreSQL cannot store (a NUL or a lone
    surrogate in a string) is kept as the text received, and a status_code that is not a
    32-bit whole number is none: the log must never fail the call it records."""
    if isinstance(payload, dict) and not ocpi.text_problem(payload):
        log.response_body = redact(module, payload)
    else:
        log.response_body = {"body": _loggable(text[:2000])}
    status = payload.get("status_code") if isinstance(payload, dict) else None
    if isinstance(status, bool) or not isinstance(status, int) or not -(2**31) <= status < 2**31:
        status = None
    log.ocpi_status = status


def call(
    *,
    partner: Partner | None,
    method: str,
    url: str,
    token: str,
    module: str,
    body: Any = None,
    params: dict[str, str] | None = None,
    to_party: tuple[str, str] | None = None,
    from_party: tuple[str, str] | None = None,
    timeout: float | None = None,
    client: httpx.Client | None = None,
) -> Answer:
    """Send one OCPI request and return its answer; raise PartnerCallError unless it is 1xxx.

    `to_party` (country code, party id) adds the routing headers a hub needs; `from_party` is
    ours in them (our CPO party unless given: our eMSP role sends as its identity's party).
    """
    request_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    headers = {
        "Authorization": ocpi.encode_authorization(token),
        "X-Request-ID": request_id,
        "X-Correlation-ID": correlation_id,
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    if to_party is not None and module not in ("versions", "credentials", "hubclientinfo"):
        # Routing headers are never used with the configuration modules (transport_and_format).
        headers.update(
            {
                "OCPI-to-country-code": to_party[0],
                "OCPI-to-party-id": to_party[1],
                "OCPI-from-country-code": (from_party or (settings.OCPI_COUNTRY_CODE, ""))[0],
                "OCPI-from-party-id": (from_party or ("", settings.OCPI_PARTY_ID))[1],
            }
        )
    log = OcpiLog(
        partner=partner,
        direction=OcpiLog.Direction.OUT,
        module=module,
        method=method,
        url=url[:1000],
        request_id=request_id,
        correlation_id=correlation_id,
        request_body=redact(module, body),
    )
    started = time.monotonic()
    own_client = client is None
    http = client or outbound.http_client(timeout=timeout or settings.OCPI_TIMEOUT_S)
    try:
        try:
            response = http.request(method, url, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            log.error = f"unreachable: {unreachable_words(exc)}"[:500]
            raise PartnerCallError(f"{url}: {unreachable_words(exc)}") from None
        finally:
            if own_client:
                http.close()
        log.http_status = response.status_code
        try:
            payload = ocpi.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            payload = None
        _log_answer(log, module, payload, response.text)
        if not 200 <= response.status_code < 300:
            log.error = f"HTTP {response.status_code}"
            wait = None
            if response.status_code in (429, 503):  # RFC 9110: how long to wait before asking
                wait = ocpi.retry_after_seconds(
                    response.headers.get("Retry-After"), now=datetime.now(UTC)
                )
            if wait is not None:
                log.error += f", Retry-After {wait} s"
            raise PartnerCallError(
                log.error,
                http_status=response.status_code,
                ocpi_status=log.ocpi_status,
                retry_after=wait,
            )
        if not isinstance(payload, dict) or log.ocpi_status is None:
            log.error = "answer is not an OCPI response"
            raise PartnerCallError(log.error, http_status=response.status_code)
        if not 1000 <= log.ocpi_status < 2000:
            message = _loggable(str(payload.get("status_message", "")))
            log.error = f"OCPI {log.ocpi_status}: {message}"[:500]
            raise PartnerCallError(
                log.error, http_status=response.status_code, ocpi_status=log.ocpi_status
            )
        return Answer(
            response.status_code, payload["status_code"], payload.get("data"), response.headers
        )
    finally:
        log.duration_ms = int((time.monotonic() - started) * 1000)
        log.save()
