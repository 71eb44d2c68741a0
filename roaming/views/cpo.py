"""OCPI CPO endpoints under /ocpi/ (2.2.1 and 2.3.0): transport only (roaming.transport does
the envelope); each answers in the version of the URL it was called at."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from .. import commands, ocpi, payments, selectors, services, sessions
from ..models import Partner
from ..transport import Caller, OcpiError, OcpiResult, ocpi_endpoint, page_or_error, paginated
from ..versions import v230


def _versions_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("roaming:versions"))


def our_versions_url(request: HttpRequest) -> str:
    """Return the versions URL we hand partners: SITE_URL's when set (behind a proxy the
    request's host may not be the public one), else the request's."""
    path = reverse("roaming:versions")
    return f"{settings.SITE_URL}{path}" if settings.SITE_URL else request.build_absolute_uri(path)


@ocpi_endpoint("versions", token_a_allowed=True, connected_only=False)
def versions(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    if request.method != "GET":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only GET.", http_status=405)
    return OcpiResult(
        data=[
            {
                "version": version,
                "url": request.build_absolute_uri(
                    reverse("roaming:version-details", kwargs={"version": version})
                ),
            }
            for version in ocpi.VERSIONS
        ]
    )


@ocpi_endpoint("versions", token_a_allowed=True, connected_only=False)
def version_details(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    if request.method != "GET":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only GET.", http_status=405)
    endpoints = [
        {"identifier": identifier, "role": role, "url": request.build_absolute_uri(url)}
        for identifier, role, url in services.our_endpoints(caller.version)
    ]
    return OcpiResult(data={"version": caller.version, "endpoints": endpoints})


@ocpi_endpoint("credentials", token_a_allowed=True, connected_only=False)
def credentials(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    partner = caller.partner
    registered = partner.state == Partner.State.CONNECTED and not caller.with_token_a
    method = request.method
    if method == "GET":
        # Our credentials for the partner: the token is the one it called with (we keep only
        # its hash, so it comes from the request).
        return OcpiResult(
            data=services.our_credentials(
                token=caller.token,
                versions_url=_versions_url(request),
                version=caller.version,
                organization_id=partner.organization_id,
            )
        )
    if method in ("POST", "PUT"):
        # credentials "POST Method" / "PUT Method": 405 when already / not yet registered.
        if (method == "POST") == registered:
            message = "Already registered: use PUT." if registered else "Not registered: use POST."
            raise OcpiError(ocpi.Code.CLIENT_ERROR, message, http_status=405)
        try:
            data = services.credentials_receive(
                partner=partner,
                body=body,
                versions_url=_versions_url(request),
                update=method == "PUT",
                version=caller.version,
                token=caller.token,
            )
        except services.RegistrationError as exc:
            raise OcpiError(exc.code, exc.message, http_status=exc.http_status) from None
        return OcpiResult(data=data)
    if method == "DELETE":
        if not registered:
            raise OcpiError(ocpi.Code.CLIENT_ERROR, "Not registered.", http_status=405)
        services.partner_unregister(partner=partner)
        return OcpiResult()
    raise OcpiError(ocpi.Code.CLIENT_ERROR, "Method not allowed.", http_status=405)


# -- locations (Sender) ----------------------------------------------------------------------------


def _get_only(request: HttpRequest) -> None:
    if request.method != "GET":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only GET on a sender interface.", http_status=405)


@ocpi_endpoint("locations")
def locations(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    _get_only(request)
    page = page_or_error(request)
    total, data = selectors.locations_page(
        caller.partner, page, now=timezone.now(), version=caller.version
    )
    _pulled(caller.partner)
    return paginated(request, total, page, data)


def _unknown_location() -> OcpiError:
    return OcpiError(ocpi.Code.UNKNOWN_LOCATION, "Unknown location.", http_status=404)


@ocpi_endpoint("locations")
def location_detail(
    request: HttpRequest,
    caller: Caller,
    body: Any,
    location_id: str,
    evse_uid: str = "",
    connector_id: str = "",
) -> OcpiResult:
    _get_only(request)
    location = selectors.location_get(
        caller.partner, location_id, now=timezone.now(), version=caller.version
    )
    if location is None:
        raise _unknown_location()
    _pulled(caller.partner)
    if not evse_uid:
        return OcpiResult(data=location)
    evse = next((e for e in location["evses"] if e["uid"] == evse_uid), None)
    if evse is None:
        raise _unknown_location()
    if not connector_id:
        return OcpiResult(data=evse)
    connector = next((c for c in evse["connectors"] if c["id"] == connector_id), None)
    if connector is None:
        raise _unknown_location()
    return OcpiResult(data=connector)


# -- tariffs (Sender) ------------------------------------------------------------------------------


@ocpi_endpoint("tariffs")
def tariffs(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    _get_only(request)
    page = page_or_error(request)
    total, data = selectors.tariffs_page(
        caller.partner, page, now=timezone.now(), version=caller.version
    )
    _pulled(caller.partner)
    return paginated(request, total, page, data)


def _pulled(partner: Partner) -> None:
    Partner.objects.filter(pk=partner.pk).update(last_pull_at=timezone.now())


# -- tokens (Receiver) -----------------------------------------------------------------------------


@ocpi_endpoint("tokens")
def token(
    request: HttpRequest,
    caller: Caller,
    body: Any,
    country_code: str,
    party_id: str,
    token_uid: str,
) -> OcpiResult:
    type_ = request.GET.get("type") or "RFID"
    if request.method == "GET":
        if services.party_msp(caller.partner, country_code, party_id, claim=False) is None:
            raise OcpiError(ocpi.Code.CLIENT_ERROR, "Not your party.", http_status=404)
        pushed = services.token_get(
            partner=caller.partner,
            country_code=country_code,
            party_id=party_id,
            uid=token_uid,
            type_=type_,
        )
        if pushed is None:
            raise OcpiError(ocpi.Code.UNKNOWN_TOKEN, "Unknown token.", http_status=404)
        return OcpiResult(data=pushed.data)
    if request.method not in ("PUT", "PATCH"):
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "GET, PUT or PATCH.", http_status=405)
    try:
        created = services.token_store(
            partner=caller.partner,
            country_code=country_code,
            party_id=party_id,
            uid=token_uid,
            type_=type_,
            body=body,
            patch=request.method == "PATCH",
        )
    except services.TokenRefused as exc:
        raise OcpiError(exc.code, exc.message, http_status=exc.http_status) from None
    return OcpiResult(http_status=201 if created else 200)


@ocpi_endpoint("tokens")
def tokens_root(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """The tokens receiver's base URL (listed in version details): tokens live below it."""
    raise OcpiError(
        ocpi.Code.CLIENT_ERROR,
        "Use {tokens}/{country_code}/{party_id}/{token_uid}.",
        http_status=404,
    )


# -- commands (Receiver) ---------------------------------------------------------------------------


@ocpi_endpoint("commands")
def command(request: HttpRequest, caller: Caller, body: Any, command: str = "") -> OcpiResult:
    if request.method != "POST" or not command:
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "POST {commands}/{command}.", http_status=405)
    response = commands.command_receive(partner=caller.partner, command=command, body=body)
    return OcpiResult(
        data=response.data(),
        code=response.code,
        message=response.message if response.code >= 2000 else "",
    )


# -- sessions and CDRs (Sender) --------------------------------------------------------------------


@ocpi_endpoint("sessions")
def sessions_list(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    _get_only(request)
    page = page_or_error(request)
    total, data = sessions.sessions_page(caller.partner, page, version=caller.version)
    _pulled(caller.partner)
    return paginated(request, total, page, data)


@ocpi_endpoint("cdrs")
def cdrs_list(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    _get_only(request)
    page = page_or_error(request)
    total, data = sessions.cdrs_page(caller.partner, page, version=caller.version)
    _pulled(caller.partner)
    return paginated(request, total, page, data)


# -- payments (Receiver, 2.3.0): terminals and financial advice confirmations from a PTP ----------


def _ptp(caller: Caller) -> Partner:
    """The calling partner when it is a PTP: the Payments module is between a CPO and a PTP."""
    if caller.partner.role != Partner.Role.PTP:
        raise OcpiError(
            ocpi.Code.CLIENT_ERROR,
            "The payments module is for payment terminal providers (PTP).",
            http_status=403,
        )
    return caller.partner


@ocpi_endpoint("payments", version=ocpi.V230)
def payments_root(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """The module's URL (listed in version details): its objects live below it."""
    raise OcpiError(
        ocpi.Code.CLIENT_ERROR,
        "Use {payments}/terminals or {payments}/financial-advice-confirmations.",
        http_status=404,
    )


def _refused(exc: payments.PaymentRefused) -> OcpiError:
    return OcpiError(exc.code, exc.message, http_status=exc.http_status)


@ocpi_endpoint("payments", version=ocpi.V230)
def terminals(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """POST a new Terminal (mod_payments "POST Terminal Method")."""
    if request.method != "POST":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "POST a Terminal object.", http_status=405)
    partner = _ptp(caller)
    try:
        terminal, created = payments.terminal_receive(partner=partner, body=body)
    except payments.PaymentRefused as exc:
        raise _refused(exc) from None
    return OcpiResult(data=payments.terminal_object(terminal), http_status=201 if created else 200)


@ocpi_endpoint("payments", version=ocpi.V230)
def terminal(request: HttpRequest, caller: Caller, body: Any, terminal_id: str) -> OcpiResult:
    """GET one Terminal as we hold it, with the locations and EVSEs we assigned to it."""
    if request.method != "GET":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only GET.", http_status=405)
    found = payments.terminal_get(partner=_ptp(caller), terminal_id=terminal_id)
    if found is None:
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Unknown terminal.", http_status=404)
    return OcpiResult(data=payments.terminal_object(found))


@ocpi_endpoint("payments", version=ocpi.V230)
def financial_advice_confirmations(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """POST a Financial Advice Confirmation, tied by its authorization_reference to the session
    the PTP started and its CDR."""
    if request.method != "POST":
        raise OcpiError(
            ocpi.Code.CLIENT_ERROR, "POST a FinancialAdviceConfirmation object.", http_status=405
        )
    try:
        confirmation, created = payments.financial_advice_receive(partner=_ptp(caller), body=body)
    except payments.PaymentRefused as exc:
        raise _refused(exc) from None
    return OcpiResult(data=confirmation.data, http_status=201 if created else 200)


@ocpi_endpoint("payments", version=ocpi.V230)
def financial_advice_confirmation(
    request: HttpRequest, caller: Caller, body: Any, fac_id: str
) -> OcpiResult:
    if request.method != "GET":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only GET.", http_status=405)
    found = payments.financial_advice_get(partner=_ptp(caller), fac_id=fac_id)
    if found is None:
        raise OcpiError(
            ocpi.Code.CLIENT_ERROR, "Unknown financial advice confirmation.", http_status=404
        )
    return OcpiResult(data=v230.financial_advice_object(found.data))
