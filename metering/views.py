"""The transparency file download (a link with a signed token; see metering.display)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from chargers.models import ChargingSession

from . import display, transparency


@require_GET
def transparency_download(request: HttpRequest, token: str) -> HttpResponse:
    session_id = display.session_id_of(token)
    session = (
        ChargingSession.objects.select_related("charger").filter(pk=session_id).first()
        if session_id is not None
        else None
    )
    document = display.transparency_document(session) if session is not None else None
    if session is None or document is None:
        raise Http404("No signed meter values behind this link.")
    response = HttpResponse(document, content_type=f"{transparency.CONTENT_TYPE}; charset=utf-8")
    name = transparency.file_name(session.charger.station_id, session.pk)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
