"""Portal pages for roaming: OCPI partners (state, pushes, pulls, errors, counts, the OCPI log)
and a location's OCPI data. Transport only: forms in, one service call, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backoffice.models import Property
from backoffice.tenancy import readable, writable_organizations
from backoffice.views import require_role
from chargers.models import Charger

from . import selectors, services
from .forms import EvseProfileForm, LocationProfileForm, PartnerConnectForm, PartnerInviteForm
from .models import Delivery, EvseProfile, LocationProfile, OcpiLog, Partner
from .views import our_versions_url


def _partners_for(user: Any) -> Any:
    return readable(Partner.objects.select_related("organization", "msp"), user)


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
                )
                # Shown once: only its hash is kept.
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
    rows = [(p, selectors.partner_counts(p)) for p in _partners_for(request.user).order_by("name")]
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
            "can_edit": membership.can_write,
        },
    )


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
        },
    )
