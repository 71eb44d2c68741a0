"""Portal pages for roaming: OCPI partners (state, pushes, pulls, errors, counts, the OCPI log)
and a location's OCPI data. Transport only: forms in, one service call, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice.models import Property
from backoffice.tenancy import readable, require_role, writable_organizations
from chargers.models import Charger

from .. import access_points as feeds
from .. import invoices, payments, plain, selectors, services
from ..forms import (
    AccessPointFeedForm,
    EvseProfileForm,
    LocationProfileForm,
    ParkingPlaceForm,
    PartnerConnectForm,
    PartnerInviteForm,
    TerminalActivateForm,
    TerminalAssignForm,
)
from ..models import (
    AccessPointFeed,
    Delivery,
    EvseProfile,
    LocationProfile,
    OcpiLog,
    ParkingPlace,
    Partner,
    Terminal,
    TerminalActivation,
    TerminalPayment,
)
from .cpo import our_versions_url


def _partners_for(user: Any) -> Any:
    return readable(Partner.objects.select_related("organization", "msp"), user).exclude(
        role=Partner.Role.NAP
    )


@login_required
def partner_list(request: HttpRequest) -> HttpResponse:
    organizations = writable_organizations(request.user)
    invite = PartnerInviteForm(organizations=organizations, prefix="invite")
    connect = PartnerConnectForm(organizations=organizations, prefix="connect")
    issued = None
    if request.method == "POST":
        if not organizations.exists():
            raise PermissionDenied("Your role is read-only.")
        if request.POST.get("action") == "invite":
            invite = PartnerInviteForm(request.POST, organizations=organizations, prefix="invite")
            if invite.is_valid():
                partner, token_a = services.partner_invite(
                    organization=invite.cleaned_data["organization"],
                    name=invite.cleaned_data["name"],
                    key=invite.cleaned_data["key"],
                )
                # Shown once: only its hash is kept.
                if token_a is None:  # this form was sent again after the partner registered
                    messages.info(
                        request, f"{partner.name} has registered already with this invite."
                    )
                else:
                    issued = {
                        "partner": partner,
                        "token_a": token_a,
                        "versions_url": our_versions_url(request),
                    }
                invite = PartnerInviteForm(organizations=organizations, prefix="invite")
        else:
            connect = PartnerConnectForm(
                request.POST, organizations=organizations, prefix="connect"
            )
            if connect.is_valid():
                try:
                    partner = services.partner_connect(
                        organization=connect.cleaned_data["organization"],
                        name=connect.cleaned_data["name"],
                        versions_url=connect.cleaned_data["versions_url"],
                        token_a=connect.cleaned_data["token_a"],
                        our_versions_url=our_versions_url(request),
                    )
                except services.RegistrationError as exc:
                    connect.add_error(
                        None,
                        f"The partner refused or could not be reached (OCPI {exc.code}): {exc.message}",
                    )
                else:
                    messages.success(
                        request,
                        f"Connected to {partner.name} ({partner.country_code}*{partner.party_id}).",
                    )
                    return redirect("partners:msp-ocpi-partner", pk=partner.pk)
    rows = [
        (p, selectors.partner_counts(p), plain.error_words(p.last_error))
        for p in _partners_for(request.user).order_by("name")
    ]
    properties = readable(Property.objects.select_related("ocpi_profile"), request.user).order_by(
        "name"
    )
    locations = [
        (
            prop,
            hasattr(prop, "ocpi_profile"),
            selectors.published_chargers(prop.organization_id).filter(property=prop).exists(),
        )
        for prop in properties[:200]
    ]
    return render(
        request,
        "roaming/partner_list.html",
        {
            "rows": rows,
            "invite": invite,
            "connect": connect,
            "issued": issued,
            "can_add": organizations.exists(),
            "locations": locations,
        },
    )


@login_required
def partner_detail(request: HttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(_partners_for(request.user), pk=pk)
    membership = require_role(request.user, partner.organization_id)
    q = request.GET.get("q", "").strip()
    log = OcpiLog.objects.filter(partner=partner)
    if q:
        status = int(q) if q.isdigit() else None
        log = log.filter(
            Q(url__icontains=q)
            | Q(module__iexact=q)
            | Q(method__iexact=q)
            | Q(request_id=q)
            | Q(correlation_id=q)
            | Q(error__icontains=q)
            | Q(http_status=status)
            | Q(ocpi_status=status)
        )
    page = Paginator(log.order_by("-id"), 50).get_page(request.GET.get("page"))
    waiting = Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).order_by(
        "id"
    )[:50]
    return render(
        request,
        "roaming/partner_detail.html",
        {
            "partner": partner,
            "counts": selectors.partner_counts(partner),
            "page": page,
            "q": q,
            "waiting": waiting,
            # Down at its last try: every push waits for that retry, new ones too.
            "resting_until": services.partner_resting_until(partner.pk, now=timezone.now()),
            "can_edit": membership.can_write,
            "error_words": plain.error_words(partner.last_error),
            "live_refusals": [
                (msp, plain.live_error_words(msp.live_error))
                for msp in selectors.live_refusals(partner)
            ],
            "newer_version": selectors.newer_version(partner),
            **_terminals_context(partner, request),
        },
    )


def _terminals_context(partner: Partner, request: HttpRequest) -> dict[str, Any]:
    """A PTP's terminals (each with its assignment form) and the sessions paid at them."""
    if partner.role != Partner.Role.PTP:
        return {}
    assignable = payments.assignable(partner)
    terminals = [
        (
            terminal,
            TerminalAssignForm(terminal=terminal, assignable=assignable, prefix=f"t{terminal.pk}"),
        )
        for terminal in Terminal.objects.filter(partner=partner).prefetch_related("assignments")
    ]
    paid = [
        (payment, payments.payment_status(payment))
        for payment in TerminalPayment.objects.filter(partner=partner)
        .select_related("terminal", "charger", "session")
        .prefetch_related("confirmations")
        .order_by("-pk")[:50]
    ]
    activations = TerminalActivation.objects.filter(partner=partner).select_related("terminal")[:20]
    return {
        "terminals": terminals,
        "terminal_payments": paid,
        "activate_form": TerminalActivateForm(assignable=assignable, prefix="activate"),
        "activations": activations,
    }


@login_required
@require_POST
def partner_version_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a partner to the newest OCPI version both sides speak (a credentials update); with
    `renew`, the same update also on its version (new tokens both ways)."""
    partner = get_object_or_404(_partners_for(request.user), pk=pk)
    require_role(request.user, partner.organization_id, edit=True)
    before = partner.version or "2.2.1"
    renew = bool(request.POST.get("renew"))
    try:
        moved = services.partner_version_update(
            partner=partner, our_versions_url=our_versions_url(request), renew=renew
        )
    except services.RegistrationError as exc:
        kept = "keeps its credentials" if renew else f"stays on OCPI {before}"
        messages.error(request, f"{partner.name} {kept}: {exc.message}")
    else:
        if renew:
            messages.success(
                request,
                f"{partner.name} took new credentials (OCPI {moved.version}): it calls us with "
                "the new token we sent it, and we call it with the one it answered.",
            )
        else:
            messages.success(request, f"{partner.name} now speaks OCPI {moved.version} with us.")
    return redirect("partners:msp-ocpi-partner", pk=partner.pk)


@login_required
@require_POST
def terminal_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """The locations and EVSEs a PTP's payment terminal serves; the PTP is told."""
    terminal = get_object_or_404(
        readable(Terminal.objects.select_related("partner"), request.user), pk=pk
    )
    require_role(request.user, terminal.organization_id, edit=True)
    form = TerminalAssignForm(
        request.POST,
        terminal=terminal,
        assignable=payments.assignable(terminal.partner),
        prefix=f"t{terminal.pk}",
    )
    if not form.is_valid():
        messages.error(request, "Choose among your public roaming chargers only.")
    else:
        locations, evses = form.assignment()
        try:
            payments.terminal_assign(terminal=terminal, location_ids=locations, evses=evses)
        except payments.InvalidAssignment as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Terminal {terminal.terminal_id} now serves {len(locations)} location(s) and "
                f"{len(evses)} single EVSE(s); {terminal.partner.name} is told.",
            )
    return redirect(reverse("partners:msp-ocpi-partner", args=[terminal.partner_id]) + "#terminals")


@login_required
@require_POST
def terminal_activate(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask a PTP to activate a terminal built into a station (mod_payments Activate Terminal)."""
    partner = get_object_or_404(_partners_for(request.user), pk=pk, role=Partner.Role.PTP)
    require_role(request.user, partner.organization_id, edit=True)
    form = TerminalActivateForm(
        request.POST, assignable=payments.assignable(partner), prefix="activate"
    )
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        messages.error(request, f"Nothing was asked: {errors}")
    else:
        locations, evses = form.assignment()
        try:
            payments.terminal_activate(
                partner=partner,
                reference=form.cleaned_data["reference"],
                location_ids=locations,
                evses=evses,
            )
        except payments.InvalidAssignment as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"{partner.name} is asked to activate terminal {form.cleaned_data['reference']}; "
                "it appears here once they create it, already serving what you chose.",
            )
    return redirect(reverse("partners:msp-ocpi-partner", args=[partner.pk]) + "#terminals")


@login_required
@require_POST
def terminal_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """Deactivate a broken or moved terminal: it serves nothing more, and the PTP is told."""
    terminal = get_object_or_404(
        readable(Terminal.objects.select_related("partner"), request.user), pk=pk
    )
    require_role(request.user, terminal.organization_id, edit=True)
    payments.terminal_deactivate(terminal=terminal)
    messages.success(
        request,
        f"Terminal {terminal.terminal_id} is deactivated: drivers can no longer pay there, "
        f"and {terminal.partner.name} is told.",
    )
    return redirect(reverse("partners:msp-ocpi-partner", args=[terminal.partner_id]) + "#terminals")


@login_required
@require_POST
def partner_unregister(request: HttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(_partners_for(request.user), pk=pk)
    require_role(request.user, partner.organization_id, edit=True)
    services.partner_disconnect(partner=partner)
    messages.success(
        request, f"{partner.name} is unregistered: neither side can call the other any more."
    )
    return redirect("partners:msp-ocpi-partner", pk=partner.pk)


@login_required
def location_ocpi(request: HttpRequest, pk: int) -> HttpResponse:
    """Locations > roaming options: the data OCPI (and AFIR) publish about a location."""
    prop = get_object_or_404(readable(Property.objects.all(), request.user), pk=pk)
    can_edit = require_role(request.user, prop.organization_id).can_write
    profile = LocationProfile.objects.filter(property=prop).first()
    chargers = list(Charger.objects.filter(property=prop).order_by("station_id"))
    forms_by_charger = {
        c.pk: EvseProfileForm(
            instance=EvseProfile.objects.filter(charger=c).first() or EvseProfile(charger=c),
            prefix=f"cp{c.pk}",
        )
        for c in chargers
    }
    form = LocationProfileForm(instance=profile or LocationProfile(property=prop), prefix="loc")
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Your role is read-only.")
        form = LocationProfileForm(
            request.POST, instance=profile or LocationProfile(property=prop), prefix="loc"
        )
        forms_by_charger = {
            c.pk: EvseProfileForm(
                request.POST,
                instance=EvseProfile.objects.filter(charger=c).first() or EvseProfile(charger=c),
                prefix=f"cp{c.pk}",
            )
            for c in chargers
        }
        if form.is_valid() and all(f.is_valid() for f in forms_by_charger.values()):
            services.location_portal_save(
                location=form.instance,
                address=form.cleaned_data["address"],
                connectors=[f.instance for f in forms_by_charger.values()],
            )
            count = selectors.published_chargers(prop.organization_id).filter(property=prop).count()
            messages.success(
                request,
                f"Address and roaming data of {prop.name} saved: "
                + (
                    f"{count} charger(s) published to roaming partners."
                    if count
                    else "no charger is published yet (only public chargers with roaming on are)."
                ),
            )
            return redirect("partners:location-ocpi", pk=prop.pk)
    published = {c.pk: selectors.charger_is_published(c) for c in chargers}
    return render(
        request,
        "roaming/location_ocpi.html",
        {
            "prop": prop,
            "form": form,
            "chargers": [(c, forms_by_charger[c.pk], published[c.pk]) for c in chargers],
            "can_edit": can_edit,
            "afir": selectors.afir_status(prop, now=timezone.now()),
        },
    )


@require_GET
def terminal_invoice_base(request: HttpRequest, key: str) -> HttpResponse:
    """The invoice base URL alone names no invoice (the terminal adds the reference)."""
    raise Http404("No invoice")


@require_GET
def terminal_invoice(request: HttpRequest, key: str, reference: str) -> HttpResponse:
    """The driver's invoice for a session paid at a payment terminal (no account needed)."""
    context = invoices.terminal_invoice(key=key, reference=reference)
    if context is None:
        raise Http404("No invoice")
    response = render(request, "roaming/terminal_invoice.html", context)
    response["X-Robots-Tag"] = "noindex"
    return response


@login_required
def location_parking(request: HttpRequest, pk: int) -> HttpResponse:
    """Locations > roaming data > parking places: the spaces its chargers serve, as OCPI 2.3.0
    tells partners and, through them, a National Access Point (AFIR)."""
    prop = get_object_or_404(readable(Property.objects.all(), request.user), pk=pk)
    can_edit = require_role(request.user, prop.organization_id).can_write
    chargers = Charger.objects.filter(property=prop).order_by("station_id")
    places = list(
        ParkingPlace.objects.filter(property=prop).prefetch_related("evses").order_by("pk")
    )

    def forms_for(data: Any = None) -> list[ParkingPlaceForm]:
        found = [
            ParkingPlaceForm(data, instance=place, chargers=chargers, prefix=f"p{place.pk}")
            for place in places
        ]
        found.append(ParkingPlaceForm(data, chargers=chargers, prefix="new"))
        return found

    forms = forms_for()
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Your role is read-only.")
        forms = forms_for(request.POST)
        removed = {int(v) for v in request.POST.getlist("remove") if v.isdigit()}
        adding = request.POST.get("new-vehicle_types") is not None
        keep = [f for f in forms[:-1] if f.instance.pk not in removed]
        checked = keep + ([forms[-1]] if adding else [])
        if all(f.is_valid() for f in checked):
            try:
                services.parking_places_save(
                    property_id=prop.pk, places=[f.as_place() for f in checked]
                )
            except services.InvalidParking as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Parking places of {prop.name} saved.")
                return redirect("partners:location-parking", pk=prop.pk)
    return render(
        request,
        "roaming/location_parking.html",
        {"prop": prop, "forms": forms, "can_edit": can_edit},
    )


@login_required
def access_points(request: HttpRequest) -> HttpResponse:
    """AFIR feeds to National Access Points: each with its freshness, last delivery and last
    error in words, and the form that sets one (owners and managers)."""
    organizations = writable_organizations(request.user)
    form = AccessPointFeedForm(organizations=organizations, prefix="feed")
    if request.method == "POST":
        if not organizations.exists():
            raise PermissionDenied("Your role is read-only.")
        form = AccessPointFeedForm(request.POST, organizations=organizations, prefix="feed")
        if form.is_valid():
            try:
                feed, sync_needed = feeds.feed_save(
                    organization=form.cleaned_data["organization"],
                    country=form.cleaned_data["country"],
                    data=form.feed_data(),
                )
            except feeds.InvalidFeed as exc:
                for field, words in exc.errors.items():
                    form.add_error(field if field in form.fields else None, words)
            else:
                if sync_needed:
                    feeds.full_sync_after_commit(feed)
                state = "delivering" if feed.enabled else "switched off"
                messages.success(
                    request, f"Access point {feed.country} of {feed.organization}: {state}."
                )
                return redirect("partners:access-points")
    rows = [
        (feed, feeds.feed_state(feed))
        for feed in readable(
            AccessPointFeed.objects.select_related("organization", "partner"), request.user
        ).order_by("organization__name", "country")
    ]
    return render(
        request,
        "roaming/access_points.html",
        {"rows": rows, "form": form, "can_add": organizations.exists()},
    )
