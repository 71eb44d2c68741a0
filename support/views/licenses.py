"""A charger's license in the host portal (docs/billing.md, "Charger licenses"): what the plan
costs and covers, activate it within the plan (owners: it is billed), or ask support with one
click (a ticket answered by email; the page shows it until support answers)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from backoffice.models import Membership, Property
from backoffice.tenancy import membership_in, owns, readable
from billing.licenses import LicenseRefused, license_activate, license_plan, offer_for
from billing.money import round_money
from chargers.models import Charger

from ..services import license_request, open_license_request


def _charger(user: Any, station_id: str) -> Charger:
    charger = (
        readable(Charger.objects.select_related("property"), user)
        .filter(station_id=station_id)
        .first()
    )
    if charger is None or charger.property_id is None:
        raise Http404("No such charger")
    return charger


def _post(request: HttpRequest, charger: Charger, membership: Membership) -> None:
    action = request.POST.get("action", "")
    if action == "activate":
        if not owns(membership):
            raise PermissionDenied("Only owners activate licenses: they are billed.")
        try:
            offer = license_activate(charger_id=charger.pk)
        except LicenseRefused as exc:
            messages.error(request, str(exc))
            return
        assert offer.valid_until and offer.price is not None
        messages.success(
            request,
            f"License active until {offer.valid_until:%d %b %Y}: {charger.station_id} can charge "
            f"now. {round_money(offer.price, offer.currency)} {offer.currency} is deducted from "
            "your balance on the next payout.",
        )
    elif action == "request":
        if not membership.can_write:
            raise PermissionDenied("Your role is read-only.")
        ticket, created = license_request(charger_id=charger.pk, user=request.user)
        if created:
            messages.success(
                request,
                f"Support was asked (request #{ticket.reference}). You get an email and this "
                "page shows the license once they activate it.",
            )
        else:
            messages.info(request, f"Support already has your request #{ticket.reference}.")
    else:
        messages.error(request, "Choose Activate or Ask support.")


@login_required
@require_http_methods(["GET", "POST"])
def charger_license(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = _charger(request.user, station_id)
    place = charger.property
    assert isinstance(place, Property)  # _charger answers 404 for a charger without one
    membership = membership_in(request.user, place.organization_id)
    if request.method == "POST":
        if membership is None:  # staff reading across organizations act in the admin
            raise PermissionDenied("Support activates licenses from the ticket's toolkit.")
        _post(request, charger, membership)
        return redirect(request.path)
    offer = offer_for(charger)
    plan = license_plan()
    return render(
        request,
        "support/charger_license.html",
        {
            "charger": charger,
            "license_active": charger.license_active(),
            "offer": offer,
            "plan": plan,
            "plan_price": plan.price_in(place.currency),
            "currency": place.currency.upper(),
            "is_owner": owns(membership),
            "can_write": membership is not None and membership.can_write,
            "open_request": open_license_request(charger.pk),
        },
    )
