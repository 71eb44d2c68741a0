"""Portal pages of stays: stay policies and calendar feeds per property; PMS integrations (sync state,
Sync now, listing ↔ unit mapping); webhooks."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from backoffice.models import Property
from backoffice.tenancy import can_write, readable, writable_organizations

from .forms import CalendarFeedForm, PmsConnectForm, PmsCredentialsForm, StayPolicyForm
from .models import CalendarFeed, Listing, PmsIntegration, StayPolicy, Unit
from .selectors import calendar_feeds_for, integrations_for, units_for
from .services.pms import (
    credentials_from,
    integration_create,
    integration_credentials_replace,
    integration_disconnect,
    listing_map,
    pms_sync,
    pms_webhook,
)
from .services.stays import (
    SyncResult,
    calendar_feed_create,
    calendar_feed_delete,
    calendar_feed_sync,
    stay_policy_update,
)


@login_required
def integration_list(request: HttpRequest) -> HttpResponse:
    """GET /stays/integrations/: each PMS integration's last sync, counts, error and mapping."""
    rows = []
    for integration in integrations_for(request.user).prefetch_related("listings__unit"):
        rows.append(
            {
                "integration": integration,
                "can_edit": can_write(request.user, integration.organization_id),
                "listings": list(integration.listings.all()),
                "units": list(
                    units_for(request.user).filter(
                        property__organization_id=integration.organization_id
                    )
                ),
                "webhook_url": request.build_absolute_uri(
                    f"/stays/webhooks/{integration.webhook_key}/"
                ),
            }
        )
    organizations = _writable_organizations(request)
    connect = (
        PmsConnectForm(organizations=organizations, auto_id="connect_%s")
        if organizations.exists()
        else None
    )
    return render(
        request,
        "stays/integration_list.html",
        {"rows": rows, "portal_section": "integrations", "connect_form": connect},
    )


def _editable(request: HttpRequest, pk: int) -> PmsIntegration:
    integration = get_object_or_404(integrations_for(request.user), pk=pk)
    if not can_write(request.user, integration.organization_id):
        raise Http404("No such integration")
    return integration


@login_required
@require_POST
def integration_sync(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _editable(request, pk)
    result = pms_sync(integration_id=integration.pk, force=True)
    if result.ok:
        messages.success(
            request,
            f"{integration}: {result.listings} listings, {result.reservations} reservations "
            f"synced{f', {result.unmapped} on unmapped listings' if result.unmapped else ''}"
            f"{f', {result.left_out} left out (no usable id or dates)' if result.left_out else ''}.",
        )
    else:
        messages.error(request, f"{integration}: {result.error}")
    return _back_to(request, integration)


@login_required
@require_POST
def integration_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Disconnect the PMS (owners and managers): nothing syncs any more."""
    integration = _editable(request, pk)
    name = str(integration)
    cancelled = integration_disconnect(integration=integration)
    messages.success(
        request,
        f"{name} disconnected: its credentials are deleted and nothing syncs from it"
        + (f"; {cancelled} upcoming reservations from it cancelled." if cancelled else "."),
    )
    return redirect("stays:integration-list")


@login_required
@require_POST
def listing_unit(request: HttpRequest, pk: int, listing_id: int) -> HttpResponse:
    integration = _editable(request, pk)
    listing = get_object_or_404(Listing, pk=listing_id, integration=integration)
    unit_id = request.POST.get("unit", "")
    unit = units_for(request.user).filter(pk=int(unit_id)).first() if unit_id.isdecimal() else None
    if unit_id and unit is None:  # not one of the user's units: change nothing (not "unmap")
        messages.error(request, "Choose one of your units.")
        return _back_to(request, integration)
    try:
        listing_map(listing=listing, unit=unit)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"{listing} → {unit or 'not mapped'}. The next sync links its reservations."
        )
    return _back_to(request, integration)


def _back_to(request: HttpRequest, integration: PmsIntegration) -> HttpResponse:
    # The integration's own page posts back=detail; the list page posts nothing.
    if request.POST.get("back") == "detail":
        return redirect("stays:integration-detail", pk=integration.pk)
    return redirect("stays:integration-list")


WEBHOOK_INVALID = (
    "The body is not JSON, or its reservation has no usable id, check-in and check-out: "
    "nothing was changed."
)


@csrf_exempt  # called by the PMS, authenticated by its signature
@require_POST
def webhook(request: HttpRequest, key: str) -> HttpResponse:
    outcome = pms_webhook(webhook_key=key, headers=dict(request.headers), body=request.body)
    if outcome == "invalid":  # signed, but unreadable: say so, as a 400 (never parser text)
        return JsonResponse({"result": outcome, "detail": WEBHOOK_INVALID}, status=400)
    status = {"ok": 200, "ignored": 202, "unknown": 404, "bad_signature": 401}[outcome]
    return JsonResponse({"result": outcome}, status=status)


# -- a property's stays: policy and calendar feeds -------------------------------------------------


@login_required
def stay_settings(request: HttpRequest) -> HttpResponse:
    """GET /stays/properties/: per property, the stay policy, its units and its calendar feeds."""
    properties = list(
        readable(Property.objects.select_related("organization"), request.user).order_by("name")
    )
    policies = {p.property_id: p for p in StayPolicy.objects.filter(property__in=properties)}
    feeds: dict[int, list[CalendarFeed]] = {}
    for feed in (
        CalendarFeed.objects.filter(property__in=properties).select_related("unit").order_by("name")
    ):
        feeds.setdefault(feed.property_id, []).append(feed)
    units: dict[int, list[Unit]] = {}
    for unit in Unit.objects.filter(property__in=properties).order_by("name"):
        units.setdefault(unit.property_id, []).append(unit)
    rows = []
    for prop in properties:
        policy = policies.get(prop.pk) or StayPolicy(property=prop)
        rows.append(
            {
                "property": prop,
                "policy": policy,
                "can_edit": can_write(request.user, prop.organization_id),
                "policy_form": StayPolicyForm(instance=policy, auto_id=f"policy{prop.pk}_%s"),
                "feed_form": CalendarFeedForm(property=prop, auto_id=f"feed{prop.pk}_%s"),
                "feeds": feeds.get(prop.pk, []),
                "units": units.get(prop.pk, []),
            }
        )
    return render(
        request, "stays/stay_settings.html", {"rows": rows, "portal_section": "integrations"}
    )


def _editable_property(request: HttpRequest, pk: int) -> Property:
    prop = get_object_or_404(
        readable(Property.objects.select_related("organization"), request.user), pk=pk
    )
    if not can_write(request.user, prop.organization_id):
        raise Http404("No such property")
    return prop


def _errors_in_words(form: forms.BaseForm) -> str:
    """Return a form's errors as one sentence per field, named by its label (shown as a message)."""
    parts = []
    for name, errors in form.errors.get_json_data().items():
        text = " ".join(str(error["message"]) for error in errors)
        parts.append(f"{form.fields[name].label}: {text}" if name in form.fields else text)
    return " ".join(parts)


def _back(prop_id: int) -> HttpResponse:
    return redirect(f"{reverse('stays:stay-settings')}#property-{prop_id}")


@login_required
@require_POST
def policy_update(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /stays/properties/<pk>/policy/: owners and managers change how stays give charging."""
    prop = _editable_property(request, pk)
    policy = StayPolicy.objects.filter(property=prop).first() or StayPolicy(property=prop)
    form = StayPolicyForm(request.POST, instance=policy)
    if not form.is_valid():
        messages.error(request, f"{prop.name}: {_errors_in_words(form)}")
        return _back(prop.pk)
    fields = {name: form.cleaned_data[name] for name in StayPolicyForm.Meta.fields}
    try:
        stay_policy_update(property=prop, **fields)
    except ValidationError as exc:
        messages.error(request, f"{prop.name}: {' '.join(exc.messages)}")
    else:
        messages.success(request, f"{prop.name}: stay policy saved.")
    return _back(prop.pk)


@login_required
@require_POST
def calendar_add(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /stays/properties/<pk>/calendars/: add an iCal feed to the property or a unit, pull it."""
    prop = _editable_property(request, pk)
    form = CalendarFeedForm(request.POST, property=prop)
    if not form.is_valid():
        messages.error(request, f"{prop.name}: {_errors_in_words(form)}")
        return _back(prop.pk)
    try:
        feed = calendar_feed_create(
            property=prop,
            name=form.cleaned_data["name"],
            url=form.cleaned_data["url"],
            unit=form.cleaned_data["unit"],
        )
    except ValidationError as exc:
        messages.error(request, f"{prop.name}: {' '.join(exc.messages)}")
        return _back(prop.pk)
    result = calendar_feed_sync(feed_id=feed.pk)  # the first pull at once: the host sees it work
    _sync_message(request, feed, result)
    return _back(prop.pk)


def _editable_feed(request: HttpRequest, pk: int) -> CalendarFeed:
    feed = get_object_or_404(calendar_feeds_for(request.user), pk=pk)
    if not can_write(request.user, feed.property.organization_id):
        raise Http404("No such calendar")
    return feed


def _sync_message(request: HttpRequest, feed: CalendarFeed, result: SyncResult) -> None:
    if result.ok:
        messages.success(
            request,
            f"{feed.name}: {result.bookings} bookings ({result.created} new, "
            f"{result.cancelled} cancelled), {result.blocked} blocked ranges skipped.",
        )
    else:
        messages.error(request, f"{feed.name}: {result.error}")


@login_required
@require_POST
def calendar_sync(request: HttpRequest, pk: int) -> HttpResponse:
    feed = _editable_feed(request, pk)
    _sync_message(request, feed, calendar_feed_sync(feed_id=feed.pk))
    return _back(feed.property_id)


@login_required
@require_POST
def calendar_remove(request: HttpRequest, pk: int) -> HttpResponse:
    feed = _editable_feed(request, pk)
    prop_id, name = feed.property_id, feed.name
    cancelled = calendar_feed_delete(feed=feed)
    messages.success(
        request,
        f"{name} removed"
        + (f"; {cancelled} upcoming reservations from it cancelled." if cancelled else "."),
    )
    return _back(prop_id)


@login_required
def integration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """GET /stays/integrations/<pk>/: one integration's sync state, listings and latest reservations."""
    integration = get_object_or_404(integrations_for(request.user), pk=pk)
    listings = list(integration.listings.select_related("unit", "unit__property"))
    return render(
        request,
        "stays/integration_detail.html",
        {
            "i": integration,
            "can_edit": can_write(request.user, integration.organization_id),
            "listings": listings,
            "unmapped": sum(1 for listing in listings if listing.unit_id is None),
            "units": list(
                units_for(request.user).filter(
                    property__organization_id=integration.organization_id
                )
            ),
            "reservations": list(
                integration.reservations.select_related("unit", "property").order_by("-updated_at")[
                    :20
                ]
            ),
            "webhook_url": request.build_absolute_uri(
                f"/stays/webhooks/{integration.webhook_key}/"
            ),
            "portal_section": "integrations",
            "credentials_form": PmsCredentialsForm(auto_id="cred_%s"),
        },
    )


# -- connecting a PMS ------------------------------------------------------------------------------


def _writable_organizations(request: HttpRequest) -> Any:
    return writable_organizations(request.user).order_by("name")


@login_required
@require_POST
def integration_add(request: HttpRequest) -> HttpResponse:
    """POST /stays/integrations/add/: owners/managers connect Guesty, Hospitable or Track."""
    form = PmsConnectForm(request.POST, organizations=_writable_organizations(request))
    if not form.is_valid():
        messages.error(request, _errors_in_words(form))
        return redirect("stays:integration-list")
    data = form.cleaned_data
    try:
        integration = integration_create(
            organization_id=data["organization"].pk,
            vendor=data["vendor"],
            name=data["name"],
            base_url=data["base_url"] or "",
            credentials=credentials_from(
                data["vendor"],
                key=data["key"],
                secret=data["secret"],
                webhook_secret=data["webhook_secret"],
            ),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("stays:integration-list")
    result = pms_sync(
        integration_id=integration.pk, force=True
    )  # the first pull: the host sees it work
    if result.ok:
        messages.success(
            request,
            f"{integration} connected: {result.listings} listings. Map them to your units below.",
        )
    else:
        messages.error(
            request, f"{integration} connected, but the first sync failed: {result.error}"
        )
    return redirect("stays:integration-detail", pk=integration.pk)


@login_required
@require_POST
def integration_credentials(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /stays/integrations/<pk>/credentials/: new API credentials (e.g. after a revoked key)."""
    integration = _editable(request, pk)
    form = PmsCredentialsForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    try:
        integration_credentials_replace(
            integration=integration,
            credentials=credentials_from(
                integration.vendor,
                key=data.get("key", ""),
                secret=data.get("secret", ""),
                webhook_secret=data.get("webhook_secret", ""),
            ),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{integration}: new credentials saved. Sync now to check them.")
    return redirect("stays:integration-detail", pk=integration.pk)
