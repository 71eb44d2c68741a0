"""Hub Client Info (mod_hub_client_info Receiver), both versions: a hub partner pushes the status
of the parties it connects. Transport only: roaming.hub_clients answers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .. import hub_clients, ocpi
from ..transport import Caller, OcpiError, OcpiResult, ocpi_endpoint


@ocpi_endpoint("hubclientinfo")
def client_info_root(request: HttpRequest, caller: Caller, body: Any) -> OcpiResult:
    """The module's URL (listed in version details): ClientInfo objects live below it."""
    raise OcpiError(
        ocpi.Code.CLIENT_ERROR,
        "Use {hubclientinfo}/{country_code}/{party_id}.",
        http_status=404,
    )


@ocpi_endpoint("hubclientinfo")
def client_info(
    request: HttpRequest, caller: Caller, body: Any, country_code: str, party_id: str
) -> OcpiResult:
    """GET or PUT a ClientInfo of a party the calling hub connects."""
    where: dict[str, Any] = {
        "partner": caller.partner,
        "country_code": country_code,
        "party_id": party_id,
    }
    try:
        if request.method == "GET":
            # The text has one object per party; a party in two roles answers its first.
            return OcpiResult(data=hub_clients.client_info_get(**where)[0])
        if request.method == "PUT":
            hub_clients.client_info_receive(**where, body=body)
            return OcpiResult()
    except hub_clients.Refused as exc:
        raise OcpiError(exc.code, exc.message, http_status=exc.http_status) from None
    raise OcpiError(ocpi.Code.CLIENT_ERROR, "GET or PUT.", http_status=405)
