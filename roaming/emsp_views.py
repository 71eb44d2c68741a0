"""Our eMSP role's OCPI endpoints (2.2.1 and 2.3.0): the Tokens Sender interface partner CPOs
call (mod_tokens "Sender Interface"). Transport only: roaming.emsp answers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from . import emsp, ocpi
from .transport import Caller, OcpiError, OcpiResult, ocpi_endpoint, page_or_error, paginated


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
