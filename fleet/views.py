"""Portal pages of firmware campaigns: the operator's releases (add one, host its file, mark it
bad), a new campaign, the list, one campaign with each charger's timeline, and its start / pause
/ resume / halt buttons (docs/firmware.md); configuration baselines:
their list, one baseline with its chargers' drift, and a charger's Configuration tab with its
one-click re-apply (docs/operations.md)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from backoffice.models import Organization, Property
from backoffice.tenancy import can_write, readable, require_role, writable_organizations
from chargers.models import Charger
from chargers.web.selectors import charger_for_user

from .baselines import dispatch as baseline_dispatch
from .baselines import services as baseline_services
from .campaigns import hosting, services
from .forms import (
    BaselineForm,
    CampaignForm,
    MaintenanceWindowForm,
    ReleaseForm,
    expressible,
    settings_text,
)
from .models import Baseline, BaselineApplication, Campaign, CampaignTarget, FirmwareRelease

ACTIONS = ("start", "pause", "resume", "halt")


@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = readable(
        Campaign.objects.select_related("release", "organization"), request.user
    ).order_by("-created_at", "-pk")[:200]
    return render(
        request,
        "fleet/campaign_list.html",
        {
            "campaigns": campaigns,
            "may_create": writable_organizations(request.user).exists(),
            "portal_section": "firmware",
        },
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
            "actions": [a for a in ACTIONS if campaign.status in services.TRANSITIONS[a][0]],
            "portal_section": "firmware",
        },
    )


@login_required
def campaign_new(request: HttpRequest) -> HttpResponse:
    """Create a draft campaign (members who may write in the release's organization); it starts
    from its own page once the operator has checked the chargers it took."""
    organizations = writable_organizations(request.user)
    if not organizations.exists():
        raise PermissionDenied("Only owners and managers create campaigns.")
    form = CampaignForm(
        request.POST or None,
        releases=FirmwareRelease.objects.filter(organization__in=organizations, bad=False).order_by(
            "vendor", "model", "-created_at"
        ),
        properties=Property.objects.filter(organization__in=organizations).order_by("name"),
    )
    if request.method == "POST" and form.is_valid():
        campaign = _campaign_create(request, form)
        if campaign is not None:
            count = campaign.targets.count()
            messages.success(
                request,
                f"Draft campaign with {count} charger(s). Check them below, then Start.",
            )
            return redirect("fleet:campaign-detail", pk=campaign.pk)
    return render(
        request,
        "fleet/campaign_new.html",
        {"form": form, "portal_section": "firmware"},
        status=400 if form.errors else 200,
    )


def _campaign_create(request: HttpRequest, form: CampaignForm) -> Campaign | None:
    """The form's campaign, or None with the refusal added to the form."""
    data = form.cleaned_data
    release: FirmwareRelease = data["release"]
    station_ids: list[str] = data["station_ids"]
    found = dict(
        Charger.objects.filter(
            property__organization_id=release.organization_id, station_id__in=station_ids
        ).values_list("station_id", "pk")
    )
    missing = [s for s in station_ids if s not in found]
    if missing:  # another organization's charger reads like one that does not exist
        form.add_error("station_ids", f"Unknown charger: {', '.join(missing[:5])}")
        return None
    try:
        return services.campaign_create(
            organization=release.organization,
            name=data["name"],
            release=release,
            selection=services.Selection(
                property_ids=tuple(p.pk for p in data["properties"]),
                current_version=data["current_version"].strip(),
                charger_ids=tuple(found.values()),
            ),
            canary_share=data["canary_percent"] / 100,
            wave_size=data["wave_size"],
            success_threshold=data["success_percent"] / 100,
            max_failures=data["max_failures"],
            report_timeout_s=data["report_minutes"] * 60,
            user=request.user,
        )
    except services.CampaignRefused as exc:
        form.add_error(None, str(exc))
        return None


@login_required
def release_list(request: HttpRequest) -> HttpResponse:
    """The organization's firmware releases; members who may write add one, host its file here
    and mark one bad."""
    organizations = writable_organizations(request.user)
    form = ReleaseForm(request.POST or None, organizations=organizations)
    if request.method == "POST":
        if not organizations.exists():
            raise PermissionDenied("Only owners and managers add releases.")
        if form.is_valid():
            release = form.save()
            messages.success(request, f"Release {release} saved.")
            return redirect("fleet:release-list")
    releases = readable(
        FirmwareRelease.objects.select_related("organization"), request.user
    ).order_by("vendor", "model", "-created_at", "-pk")[:500]
    writable_ids = set(organizations.values_list("pk", flat=True))
    return render(
        request,
        "fleet/release_list.html",
        {
            "rows": [(r, r.organization_id in writable_ids) for r in releases],
            "form": form if writable_ids else None,
            "portal_section": "releases",
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def release_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Host the release's file here (its SHA-256 checked), or mark it bad (held everywhere)."""
    release = get_object_or_404(readable(FirmwareRelease.objects.all(), request.user), pk=pk)
    require_role(request.user, release.organization_id, edit=True)
    if action == "file":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose the firmware file to upload.")
            return redirect("fleet:release-list")
        try:
            hosting.release_file_store(release_id=release.pk, upload=upload)
        except hosting.HostingRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{release}: the file is hosted here for the chargers.")
    elif action == "mark-bad":
        reason = (request.POST.get("reason") or "").strip()[:200] or "Marked bad."
        held = services.release_mark_bad(release_id=release.pk, reason=reason)
        messages.success(request, f"{release} marked bad: {held} campaign(s) held.")
    else:
        return HttpResponse("Unknown action.", status=400)
    return redirect("fleet:release-list")


@login_required
def window_list(request: HttpRequest) -> HttpResponse:
    """Each location's maintenance window: when campaigns may install firmware there."""
    properties = readable(
        Property.objects.select_related("maintenance_window"), request.user
    ).order_by("name", "pk")[:500]
    rows = []
    for prop in properties:
        window = getattr(prop, "maintenance_window", None)
        initial = {"start": window.start, "end": window.end} if window is not None else {}
        form = MaintenanceWindowForm(initial=initial, prefix=f"w{prop.pk}")
        rows.append((prop, window, form, can_write(request.user, prop.organization_id)))
    return render(request, "fleet/window_list.html", {"rows": rows, "portal_section": "windows"})


@login_required
@require_POST
def window_set(request: HttpRequest, pk: int) -> HttpResponse:
    prop = get_object_or_404(readable(Property.objects.all(), request.user), pk=pk)
    require_role(request.user, prop.organization_id, edit=True)
    form = MaintenanceWindowForm(request.POST, prefix=f"w{prop.pk}")
    if "clear" in request.POST:
        services.maintenance_window_set(property_id=prop.pk, start=None, end=None)
        messages.success(request, f"{prop.name}: firmware may be installed at any time.")
    elif form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        services.maintenance_window_set(property_id=prop.pk, start=start, end=end)
        if start is None:
            messages.success(request, f"{prop.name}: firmware may be installed at any time.")
        else:
            messages.success(
                request,
                f"{prop.name}: firmware is installed only {start:%H:%M}–{end:%H:%M} "
                f"({prop.timezone}).",
            )
    else:
        said = [str(e) for e in form.non_field_errors()] or ["Give the times as HH:MM."]
        messages.error(request, f"{prop.name}: " + " ".join(said))
    return redirect("fleet:window-list")


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


# -- configuration baselines (docs/operations.md) -------------------------------------------------


@login_required
def baseline_list(request: HttpRequest) -> HttpResponse:
    found = readable(
        Baseline.objects.select_related("organization").annotate(count=Count("settings")),
        request.user,
    ).order_by("vendor", "model", "protocol", "pk")[:500]
    return render(
        request,
        "fleet/baseline_list.html",
        {
            "baselines": found,
            "may_create": writable_organizations(request.user).exists(),
            "portal_section": "baselines",
        },
    )


@login_required
def baseline_new(request: HttpRequest) -> HttpResponse:
    organizations = writable_organizations(request.user)
    if not organizations.exists():
        raise PermissionDenied("Only owners and managers make baselines.")
    return _baseline_form(request, BaselineForm(request.POST or None, organizations=organizations))


@login_required
def baseline_edit(request: HttpRequest, pk: int) -> HttpResponse:
    baseline = get_object_or_404(readable(Baseline.objects.all(), request.user), pk=pk)
    require_role(request.user, baseline.organization_id, edit=True)
    items = baseline_services.setting_items(baseline.pk)
    if not expressible(items):
        messages.error(
            request,
            "This baseline has values for component or variable instances, EVSEs or attributes "
            f"other than Actual: change it through the API (PUT /api/v1/config-baselines/"
            f"{baseline.pk}/).",
        )
        return redirect("fleet:baseline-detail", pk=baseline.pk)
    form = BaselineForm(
        request.POST or None,
        instance=baseline,
        initial={"settings": settings_text(items)},
        organizations=Organization.objects.filter(pk=baseline.organization_id),
    )
    return _baseline_form(request, form)


def _baseline_form(request: HttpRequest, form: BaselineForm) -> HttpResponse:
    """Save the form's baseline and its values as a new version, or show what to correct."""
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                baseline = form.save(commit=False)
                if baseline.pk is None:
                    baseline.version = 0  # the values below make it version 1
                baseline.save()
                baseline = baseline_services.baseline_settings_replace(
                    baseline_id=baseline.pk, items=form.cleaned_data["settings"]
                )
        except IntegrityError:
            form.add_error(None, "This vendor/model already has a baseline on this protocol.")
        except baseline_services.BaselineRefused as exc:
            form.add_error("settings", str(exc))
        else:
            messages.success(request, f"{baseline.name} saved as version {baseline.version}.")
            return redirect("fleet:baseline-detail", pk=baseline.pk)
    return render(
        request,
        "fleet/baseline_form.html",
        {
            "form": form,
            "baseline": form.instance if form.instance.pk else None,
            "portal_section": "baselines",
        },
        status=400 if form.errors else 200,
    )


@login_required
def baseline_detail(request: HttpRequest, pk: int) -> HttpResponse:
    baseline = get_object_or_404(readable(Baseline.objects.all(), request.user), pk=pk)
    chargers = list(baseline_services.chargers_of(baseline).order_by("station_id", "pk")[:200])
    return render(
        request,
        "fleet/baseline_detail.html",
        {
            "baseline": baseline,
            "settings": baseline_services.settings_of(baseline.pk),
            "rows": baseline_services.baseline_chargers(baseline, chargers),
            "may_write": can_write(request.user, baseline.organization_id),
            "portal_section": "baselines",
        },
    )


@login_required
@require_POST
def baseline_apply(request: HttpRequest, pk: int) -> HttpResponse:
    baseline = get_object_or_404(readable(Baseline.objects.all(), request.user), pk=pk)
    require_role(request.user, baseline.organization_id, edit=True)
    queued = baseline_services.apply_request(baseline=baseline)
    messages.success(request, f"Queued for {queued} charger(s): applied at the fleet's pace.")
    return redirect("fleet:baseline-detail", pk=baseline.pk)


def _charger_or_404(request: HttpRequest, station_id: str) -> Charger:
    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404("No such charger")
    return charger


@login_required
def charger_configuration(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = _charger_or_404(request, station_id)
    return render(
        request,
        "fleet/charger_configuration.html",
        {
            "charger": charger,
            "found": baseline_services.charger_baseline(charger),
            "may_write": can_write(request.user, charger.organization_id),
            "tab": "configuration",
            "portal_section": "chargers",
        },
    )


@login_required
@require_POST
def charger_configuration_action(
    request: HttpRequest, station_id: str, action: str
) -> HttpResponse:
    """Re-apply the charger's baseline now (one click), or read its values from the charger."""
    charger = _charger_or_404(request, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    baseline = baseline_services.baseline_for(charger)
    if action not in ("apply", "check") or baseline is None:
        return HttpResponse("Nothing to do.", status=400)
    if action == "apply":
        application_id = baseline_services.application_now(baseline=baseline, charger=charger)
        outcome = baseline_dispatch.apply_now(application_id)
        label = BaselineApplication.Outcome(outcome).label
        messages.info(request, f"Baseline v{baseline.version}: {label}.")
    else:
        said = baseline_dispatch.read_back_now(charger, baseline_services.settings_of(baseline.pk))
        messages.info(request, said)
    return redirect("fleet:charger-configuration", station_id=charger.station_id)


@require_GET
def firmware_file(request: HttpRequest, key: str, name: str) -> FileResponse:
    """A hosted firmware file for the chargers (no account: the key in its address), with its
    SHA-256 (L01.FR.08; the charger checks what it installs)."""
    found = hosting.hosted_file(key, name)
    if found is None:
        raise Http404("No such firmware.")
    path, release = found
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=release.file_name,
        content_type="application/octet-stream",
    )
    response["X-Checksum-Sha256"] = release.sha256
    return response
