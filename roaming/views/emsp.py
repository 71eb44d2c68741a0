"""Our eMSP role's OCPI endpoints (2.2.1 and 2.3.0): the Tokens Sender interface partner CPOs
call (mod_tokens "Sender Interface") and the Locations and Tariffs Receiver interfaces they
push to. Transport only: roaming.emsp and roaming.emsp_network answer."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from .. import emsp, emsp_cdrs, emsp_driving, emsp_network, ocpi
from ..transport import Caller, OcpiError, OcpiResult, ocpi_endpoint, page_or_error, paginated


def _cpo_only(caller: Caller) -> None:
    # Only a partner with a CPO role charges our drivers: anyone else has nothing here.
    if not caller.partner.is_cpo:
        raise OcpiError(
            ocpi.Code.CLIENT_ERROR,
            "This is our eMSP role's interface: for charge point operators (CPO).",
            http_status=403,
        )


@ocpi_endpoint("tokens")
def tokens(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """GET: our cards, paginated by last_updated (mod_tokens "GET Method")."""
    if request.method != "GET":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only GET on a sender interface.", http_status=405)
    _cpo_only(caller)
    page = page_or_error(request)
    total, data = emsp.tokens_page(caller.partner, page, version=caller.version)
    return paginated(request, total, page, data)


@ocpi_endpoint("tokens")
def authorize(request: HttpRequest, caller: Caller, body: Any, token_uid: str) -> OcpiResult:
    """POST: real-time authorization of one of our cards (mod_tokens "Real-time authorization")."""
    if request.method != "POST":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only POST.", http_status=405)
    _cpo_only(caller)
    ocpi_type = str(request.GET.get("type") or "RFID").upper()
    if body is not None and (
        not isinstance(body, dict) or not isinstance(body.get("location_id"), str)
    ):
        # mod_tokens "LocationReferences": location_id is required when the body is given.
        raise OcpiError(
            ocpi.Code.INVALID_PARAMETERS, "The body is a LocationReferences with location_id."
        )
    try:
        answer = emsp.authorize(
            partner=caller.partner,
            uid=token_uid,
            ocpi_type=ocpi_type,
            location=body,
            version=caller.version,
        )
    except emsp.UnknownToken:
        raise OcpiError(ocpi.Code.UNKNOWN_TOKEN, "Unknown token.", http_status=404) from None
    return OcpiResult(data=answer.data)


# -- their network in: the Locations and Tariffs Receiver interfaces -------------------------------


def _refused(exc: emsp_network.Refused) -> OcpiError:
    return OcpiError(exc.code, exc.message, http_status=exc.http_status)


@ocpi_endpoint("locations")
def locations_root(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """The module's URL (listed in version details): objects live below it."""
    raise OcpiError(
        ocpi.Code.CLIENT_ERROR,
        "Use {locations}/{country_code}/{party_id}/{location_id}[/{evse_uid}[/{connector_id}]].",
        http_status=404,
    )


@ocpi_endpoint("locations")
def location(
    request: HttpRequest,
    caller: Caller,
    body: Any,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str | None = None,
    connector_id: str | None = None,
) -> OcpiResult:
    """GET, PUT or PATCH a partner CPO's Location, EVSE or connector (mod_locations Receiver)."""
    _cpo_only(caller)
    where: dict[str, Any] = {
        "partner": caller.partner,
        "country_code": country_code,
        "party_id": party_id,
        "location_id": location_id,
        "evse_uid": evse_uid,
        "connector_id": connector_id,
    }
    try:
        if request.method == "GET":
            return OcpiResult(data=emsp_network.location_get(**where))
        if request.method in ("PUT", "PATCH"):
            emsp_network.location_receive(**where, body=body, patch=request.method == "PATCH")
            return OcpiResult()
    except emsp_network.Refused as exc:
        raise _refused(exc) from None
    raise OcpiError(ocpi.Code.CLIENT_ERROR, "GET, PUT or PATCH.", http_status=405)


@ocpi_endpoint("tariffs")
def tariffs_root(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """The module's URL (listed in version details): tariffs live below it."""
    raise OcpiError(
        ocpi.Code.CLIENT_ERROR,
        "Use {tariffs}/{country_code}/{party_id}/{tariff_id}.",
        http_status=404,
    )


@ocpi_endpoint("tariffs")
def tariff(
    request: HttpRequest,
    caller: Caller,
    body: Any,
    country_code: str,
    party_id: str,
    tariff_id: str,
) -> OcpiResult:
    """GET, PUT or DELETE a partner CPO's Tariff (mod_tariffs Receiver)."""
    _cpo_only(caller)
    where: dict[str, Any] = {
        "partner": caller.partner,
        "country_code": country_code,
        "party_id": party_id,
        "tariff_id": tariff_id,
    }
    try:
        if request.method == "GET":
            return OcpiResult(data=emsp_network.tariff_get(**where))
        if request.method == "PUT":
            emsp_network.tariff_receive(**where, body=body)
            return OcpiResult()
        if request.method == "DELETE":
            emsp_network.tariff_remove(**where)
            return OcpiResult()
    except emsp_network.Refused as exc:
        raise _refused(exc) from None
    raise OcpiError(ocpi.Code.CLIENT_ERROR, "GET, PUT or DELETE.", http_status=405)


# -- sessions and CDRs of our cards (Receiver) ------------------------------------------------------


@ocpi_endpoint("sessions")
def sessions_root(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """The module's URL (listed in version details): sessions live below it."""
    raise OcpiError(
        ocpi.Code.CLIENT_ERROR,
        "Use {sessions}/{country_code}/{party_id}/{session_id}.",
        http_status=404,
    )


@ocpi_endpoint("sessions")
def session(
    request: HttpRequest,
    caller: Caller,
    body: Any,
    country_code: str,
    party_id: str,
    session_id: str,
) -> OcpiResult:
    """GET, PUT or PATCH a Session of one of our cards (mod_sessions Receiver)."""
    _cpo_only(caller)
    where: dict[str, Any] = {
        "partner": caller.partner,
        "country_code": country_code,
        "party_id": party_id,
        "session_id": session_id,
    }
    try:
        if request.method == "GET":
            return OcpiResult(data=emsp_cdrs.session_get(**where))
        if request.method in ("PUT", "PATCH"):
            emsp_cdrs.session_receive(**where, body=body, patch=request.method == "PATCH")
            return OcpiResult()
    except emsp_network.Refused as exc:
        raise _refused(exc) from None
    raise OcpiError(ocpi.Code.CLIENT_ERROR, "GET, PUT or PATCH.", http_status=405)


@ocpi_endpoint("cdrs")
def cdrs(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """POST a CDR of one of our cards (mod_cdrs Receiver): stored once; its URL in Location."""
    if request.method != "POST":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only POST.", http_status=405)
    _cpo_only(caller)
    try:
        row, _ = emsp_cdrs.cdr_receive(partner=caller.partner, body=body)
    except emsp_network.Refused as exc:
        raise _refused(exc) from None
    url = reverse("roaming:emsp-cdr", kwargs={"version": caller.version, "cdr_id": row.cdr_id})
    return OcpiResult(headers={"Location": request.build_absolute_uri(url)})


@ocpi_endpoint("cdrs")
def cdr(request: HttpRequest, caller: Caller, body: Any, cdr_id: str) -> OcpiResult:
    """GET a CDR as the partner sent it (the URL we answered in Location)."""
    if request.method != "GET":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only GET.", http_status=405)
    _cpo_only(caller)
    try:
        return OcpiResult(data=emsp_cdrs.cdr_get(partner=caller.partner, cdr_id=cdr_id))
    except emsp_network.Refused as exc:
        raise _refused(exc) from None


# -- CommandResults of the commands we sent (mod_commands Sender) ----------------------------------


@ocpi_endpoint("commands")
def command_result(
    request: HttpRequest, caller: Caller, body: Any, command: str, uid: str
) -> OcpiResult:
    """POST: the CPO's CommandResult for a START_SESSION or STOP_SESSION we sent it, at the
    response_url we gave (unique per command)."""
    if request.method != "POST":
        raise OcpiError(ocpi.Code.CLIENT_ERROR, "Only POST.", http_status=405)
    _cpo_only(caller)
    try:
        emsp_driving.command_result(
            partner=caller.partner, command_type=command, uid=uid, body=body
        )
    except emsp_network.Refused as exc:
        raise _refused(exc) from None
    return OcpiResult()
