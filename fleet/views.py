"""Portal pages of firmware campaigns: the operator's list, one campaign with each charger's
timeline, and its pause / resume / halt buttons (docs/firmware.md)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backoffice.tenancy import can_write, readable, require_role

from . import services
from .models import Campaign, CampaignTarget

ACTIONS = ("start", "pause", "resume", "halt")


@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = readable(
        Campaign.objects.select_related("release", "organization"), request.user
    ).order_by("-created_at", "-pk")[:200]
    return render(
        request,
        "fleet/campaign_list.html",
        {"campaigns": campaigns, "portal_section": "firmware"},
    )


@login_required
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(
        readable(Campaign.objects.select_related("release"), request.user), pk=pk
    )
    targets = campaign.targets.select_related("charger").prefetch_related("events")
    counts = {label: 0 for _, label in CampaignTarget.Status.choices}
    for target in targets:
        counts[target.get_status_display()] += 1
    return render(
        request,
        "fleet/campaign_detail.html",
        {
            "campaign": campaign,
            "targets": targets,
            "counts": counts,
            "may_write": can_write(request.user, campaign.organization_id),
            "actions": ACTIONS,
            "portal_section": "firmware",
        },
    )


@login_required
@require_POST
def campaign_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    campaign = get_object_or_404(readable(Campaign.objects.all(), request.user), pk=pk)
    require_role(request.user, campaign.organization_id, edit=True)
    if action not in ACTIONS:
        return HttpResponse("Unknown action.", status=400)
    try:
        services.campaign_transition(campaign_id=campaign.pk, action=action)
    except services.CampaignRefused as exc:
        messages.error(request, str(exc))
    return redirect("fleet:campaign-detail", pk=campaign.pk)
