"""Portal pages of stays: PMS integrations (sync state, Sync now, listing ↔ unit mapping); webhooks."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from backoffice.selectors import can_edit

from .models import Listing, PmsIntegration
from .selectors import integrations_for, units_for
from .services_pms import listing_map, pms_sync, pms_webhook


@login_required
def integration_list(request: HttpRequest) -> HttpResponse:
    """GET /stays/integrations/: each PMS integration's last sync, counts, error and mapping."""
    rows = []
    for integration in integrations_for(request.user).prefetch_related("listings__unit"):
        rows.append({
            "integration": integration, "can_edit": can_edit(request.user, integration.organization_id),
            "listings": list(integration.listings.all()),
            "units": list(units_for(request.user).filter(property__organization_id=integration.organization_id)),
            "webhook_url": request.build_absolute_uri(f"/stays/webhooks/{integration.webhook_key}/"),
        })
    return render(request, "stays/integration_list.html", {"rows": rows, "portal_section": "integrations"})


def _editable(request: HttpRequest, pk: int) -> PmsIntegration:
    integration = get_object_or_404(integrations_for(request.user), pk=pk)
    if not can_edit(request.user, integration.organization_id):
        raise Http404("No such integration")
    return integration


@login_required
@require_POST
def integration_sync(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _editable(request, pk)
    result = pms_sync(integration_id=integration.pk, force=True)
    if result.ok:
        messages.success(request, f"{integration}: {result.listings} listings, {result.reservations} reservations "
                                  f"synced{f', {result.unmapped} on unmapped listings' if result.unmapped else ''}.")
    else:
        messages.error(request, f"{integration}: {result.error}")
    return redirect("stays:integration-list")


@login_required
@require_POST
def listing_unit(request: HttpRequest, pk: int, listing_id: int) -> HttpResponse:
    integration = _editable(request, pk)
    listing = get_object_or_404(Listing, pk=listing_id, integration=integration)
    unit_id = request.POST.get("unit", "")
    unit = units_for(request.user).filter(pk=int(unit_id)).first() if unit_id.isdecimal() else None
    try:
        listing_map(listing=listing, unit=unit)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{listing} → {unit or 'not mapped'}. The next sync links its reservations.")
    return redirect("stays:integration-list")


@csrf_exempt  # called by the PMS, authenticated by its signature
@require_POST
def webhook(request: HttpRequest, key: str) -> HttpResponse:
    outcome = pms_webhook(webhook_key=key, headers=dict(request.headers), body=request.body)
    status = {"ok": 200, "ignored": 202, "unknown": 404, "bad_signature": 401}[outcome]
    return JsonResponse({"result": outcome}, status=status)
