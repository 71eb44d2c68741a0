"""The OCPI server side of HTTP: authentication, envelope, request ids, routing headers, log.

Views decorated with `ocpi_endpoint` are transport only: they parse the request, call one
service or selector, and return an `OcpiResult` (or raise `OcpiError`); this module turns
that into the response the OCPI transport chapter asks for (the same in 2.2.1 and 2.3.0) and
logs both.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from backoffice import throttle
from backoffice.unavailable import RETRY_AFTER_S, unavailable_words

from . import ocpi
from .models import OcpiLog, Partner

logger = logging.getLogger(__name__)


class OcpiError(Exception):
    """An error answered as an OCPI envelope with `code`, over HTTP `http_status`."""

    def __init__(
        self, code: int, message: str, *, http_status: int = 200, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.headers = headers or {}


@dataclass
class OcpiResult:
    data: Any = None
    code: int = ocpi.Code.SUCCESS
    message: str = ""
    http_status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the partner, and whether it authenticated with its registration token A."""

    partner: Partner
    with_token_a: bool
    # The credentials token the partner presented (never stored: only its hash is kept).
    token: str = ""
    # The OCPI version of the URL called ("" for the versions list): the answer's version.
    version: str = ""
    # Routing headers of the request (transport_and_format "Message Routing"), upper-case.
    from_country_code: str = ""
    from_party_id: str = ""
    to_country_code: str = ""
    to_party_id: str = ""


# What a national access point pulls (NDW DOT-NL: the daily full pull of Locations and Tariffs).
NAP_MODULES = frozenset({"locations", "tariffs"})


def authenticate(request: HttpRequest) -> tuple[Partner, bool, str] | None:
    """Return (partner, with token A, the token) for the request's Authorization header, or None."""
    for candidate in ocpi.decode_authorization(request.headers.get("Authorization", "")):
        digest = ocpi.token_hash(candidate)
        partner = (
            Partner.objects.select_related("msp", "organization")
            .filter(Q(incoming_token_hash=digest) | Q(token_a_hash=digest))
            .exclude(state=Partner.State.UNREGISTERED)
            .first()
        )
        if partner is None:
            continue
        if partner.incoming_token_hash == digest:
            return partner, False, candidate
        if partner.state == Partner.State.PENDING:
            return partner, True, candidate
    return None


def _refuse_a_token_guesser(request: HttpRequest) -> None:
    """A client that sent LOGIN_FAILURE_LIMIT unknown tokens is refused before any token is
    looked at, for LOGIN_COOLOFF_MINUTES: the sign-in policy, applied to token guessing."""
    if throttle.ocpi_token_locked(request):
        minutes = settings.LOGIN_COOLOFF_MINUTES
        raise OcpiError(
            ocpi.Code.CLIENT_ERROR,
            f"Too many unknown credentials tokens from your address. Try again in {minutes} minutes.",
            http_status=429,
            headers={"Retry-After": str(minutes * 60)},
        )


def _json_body(request: HttpRequest) -> Any:
    if not request.body:
        return None
    try:
        body = ocpi.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise OcpiError(
            ocpi.Code.CLIENT_ERROR, "The body is not valid JSON.", http_status=400
        ) from None
    # A lone surrogate (and a NUL, when the body is not sent as JSON and so escaped the
    # middleware) is valid JSON that no column keeps: refused before any view stores it.
    problem = ocpi.text_problem(body)
    if problem:
        raise OcpiError(ocpi.Code.INVALID_PARAMETERS, problem, http_status=400)
    return body


def redact(module: str, body: Any) -> Any:
    """Return `body` without credentials tokens, for the log."""
    if module == "credentials" and isinstance(body, dict):
        inner = body.get("data") if isinstance(body.get("data"), dict) else None
        body = {**body, "token": "***"} if "token" in body else body
        if inner is not None and "token" in inner:
            body = {**body, "data": {**inner, "token": "***"}}
    return body


def ocpi_endpoint(
    module: str,
    *,
    token_a_allowed: bool = False,
    connected_only: bool = True,
    version: str = "",
) -> Callable:
    """Wrap an OCPI view: `view(request, caller, body, *args, **kwargs) -> OcpiResult`.

    token_a_allowed: the versions and credentials modules accept the registration token A
    (transport_and_format "Authorization header": any other module answers 401 to it).
    connected_only: the partner must have completed registration.
    version: the OCPI version of a module that exists in one version only (else the URL's).
    """

    def wrap(view: Callable[..., OcpiResult]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            started = time.monotonic()
            request_id = request.headers.get("X-Request-ID") or str(uuid.uuid4())
            correlation_id = request.headers.get("X-Correlation-ID") or str(uuid.uuid4())
            partner: Partner | None = None
            body: Any = None
            try:
                _refuse_a_token_guesser(request)
                auth = authenticate(request)
                # A known partner's refused call is logged on that partner (its own row).
                partner = auth[0] if auth is not None else None
                if auth is None:
                    throttle.ocpi_token_failed(request)
                if auth is None or (auth[1] and not token_a_allowed):
                    raise OcpiError(
                        ocpi.Code.CLIENT_ERROR,
                        "Unknown or missing credentials token.",
                        http_status=401,
                    )
                partner, with_token_a, presented = auth
                if partner.role == Partner.Role.NAP and (
                    module not in NAP_MODULES or request.method != "GET"
                ):
                    # A national access point's pull token reads locations and tariffs only.
                    raise OcpiError(
                        ocpi.Code.CLIENT_ERROR,
                        "An access point's token only reads locations and tariffs.",
                        http_status=401,
                    )
                called = str(kwargs.pop("version", version))
                if connected_only and partner.state != Partner.State.CONNECTED:
                    raise OcpiError(
                        ocpi.Code.CLIENT_ERROR, "Register first (credentials).", http_status=401
                    )
                body = _json_body(request)
                headers = request.headers
                caller = Caller(
                    partner=partner,
                    with_token_a=with_token_a,
                    token=presented,
                    version=called,
                    from_country_code=headers.get("OCPI-from-country-code", "").upper(),
                    from_party_id=headers.get("OCPI-from-party-id", "").upper(),
                    to_country_code=headers.get("OCPI-to-country-code", "").upper(),
                    to_party_id=headers.get("OCPI-to-party-id", "").upper(),
                )
                result = view(request, caller, body, *args, **kwargs)
            except OcpiError as exc:
                result = OcpiResult(
                    code=exc.code,
                    message=exc.message,
                    http_status=exc.http_status,
                    headers=exc.headers,
                )
            except Exception as exc:
                logger.exception("OCPI %s %s failed", request.method, request.path)
                result = _server_error(exc)
            payload = ocpi.envelope(
                result.data, code=result.code, message=result.message, now=timezone.now()
            )
            response = JsonResponse(payload, status=result.http_status, safe=False)
            response["X-Request-ID"] = request_id
            response["X-Correlation-ID"] = correlation_id
            # Routing headers of the answer mirror the request's (transport_and_format "Message Routing").
            for ours, theirs in (("to", "from"), ("from", "to")):
                for part in ("country-code", "party-id"):
                    value = request.headers.get(f"OCPI-{theirs}-{part}")
                    if value:
                        response[f"OCPI-{ours}-{part}"] = value
            for name, value in result.headers.items():
                response[name] = value
            try:
                OcpiLog.objects.create(
                    partner=partner,
                    direction=OcpiLog.Direction.IN,
                    module=module,
                    method=request.method or "",
                    url=request.get_full_path()[:1000],
                    request_id=request_id[:100],
                    correlation_id=correlation_id[:100],
                    request_body=redact(module, body),
                    http_status=result.http_status,
                    ocpi_status=int(result.code),
                    response_body=redact(module, payload),
                    error=result.message[:500] if result.code >= 2000 else "",
                    duration_ms=int((time.monotonic() - started) * 1000),
                )
            except Exception:  # the log must never cost the partner its answer
                logger.exception("Could not log an OCPI request")
            return response

        return inner

    return wrap


def _server_error(exc: Exception) -> OcpiResult:
    """Our failure on a call that reached the OCPI layer: status_code 3000 over HTTP 200, as
    status_codes says ("an HTTP error status code MUST NOT be returned" to such a request; it
    had been a 500). A database that is busy or out of reach (or Redis, the broker) says so in
    plain words, with Retry-After: its transaction was rolled back and the call may be sent
    again (our own client takes a 3xxx answer for a failure to retry, as partners do)."""
    words = unavailable_words(exc)
    if words is None:
        return OcpiResult(code=ocpi.Code.SERVER_ERROR, message="Internal error.")
    return OcpiResult(
        code=ocpi.Code.SERVER_ERROR, message=words, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def _query(request: HttpRequest) -> dict[str, str]:
    return {key: str(request.GET.get(key, "")) for key in request.GET}


def paginated(request: HttpRequest, items_total: int, page: ocpi.Page, data: list) -> OcpiResult:
    """Return a list result with the Link / X-Total-Count / X-Limit headers."""
    headers = {"X-Total-Count": str(items_total), "X-Limit": str(page.limit)}
    params = _query(request)
    link = ocpi.next_link(request.build_absolute_uri(request.path), params, page, items_total)
    if link:
        headers["Link"] = link
    return OcpiResult(data=data, headers=headers)


def page_or_error(request: HttpRequest) -> ocpi.Page:
    try:
        return ocpi.parse_page(_query(request))
    except ocpi.BadParameter as exc:
        raise OcpiError(ocpi.Code.INVALID_PARAMETERS, str(exc)) from None


@csrf_exempt
def unknown_path(request: HttpRequest) -> HttpResponse:
    """Any other path under /ocpi/: the OCPI envelope with 404, as a partner's client expects
    (never a page)."""
    return JsonResponse(
        ocpi.envelope(
            code=ocpi.Code.CLIENT_ERROR, message="No such OCPI endpoint.", now=timezone.now()
        ),
        status=404,
    )
