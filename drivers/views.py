"""Driver pages: thin adapters over drivers.services and drivers.selectors (own rows only)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.formatting import date_text, zone_or_utc
from billing.gateways import GatewayError, get_gateway
from guest.receipts import receipt_context
from metering.display import signed_meter_values

from . import selectors, services
from .models import DriverProfile

View = Callable[..., HttpResponse]
# Stripe.js and the Payment Element on the card page only, as on the guest payment page.
STRIPE_CSP = {
    "script-src": ["https://js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
}


def driver_required(view: View) -> View:
    """Signed in as a driver; anyone else (anonymous, a host) goes to the driver sign-in."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        profile = (
            DriverProfile.objects.filter(user_id=request.user.pk).first()
            if request.user.is_authenticated
            else None
        )
        if profile is None:
            return redirect(
                f"{reverse('account_login')}?{urlencode({'next': request.get_full_path()})}"
            )
        request.driver = profile  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def request_profile(request: HttpRequest) -> DriverProfile:
    return request.driver  # type: ignore[attr-defined]


def _error(request: HttpRequest, exc: Exception) -> None:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    messages.error(request, text)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated or not hasattr(request.user, "driver_profile"):
        return render(request, "drivers/welcome.html")
    profile = DriverProfile.objects.get(user_id=request.user.pk)
    return render(
        request,
        "drivers/home.html",
        {
            "profile": profile,
            "email": services.verified_email(profile),
            "cards": selectors.cards_for(profile),
            "subscriptions": selectors.subscriptions_for(profile),
            "sessions": selectors.sessions_for(profile)[:5],
        },
    )


@require_POST
@driver_required
def business_details(request: HttpRequest) -> HttpResponse:
    """A business driver's company name and VAT ID for the receipts issued from now on."""
    try:
        services.business_details_set(
            profile=request_profile(request),
            company_name=request.POST.get("company_name", ""),
            vat_id=request.POST.get("vat_id", ""),
        )
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(request, "Saved: your next receipts carry these details.")
    return redirect(f"{reverse('drivers:home')}#business")


@require_GET
@driver_required
def cards(request: HttpRequest) -> HttpResponse:
    return render(
        request, "drivers/cards.html", {"cards": selectors.cards_for(request_profile(request))}
    )


@never_cache
@require_GET
@driver_required
def card_add(request: HttpRequest) -> HttpResponse:
    """The card form: a SetupIntent confirmed in the browser, never a card number to us."""
    gateway = get_gateway()
    try:
        intent = services.card_setup_start(
            profile=request_profile(request), attempt=secrets.token_hex(8)
        )
    except GatewayError as exc:
        messages.error(request, f"Cards cannot be saved right now: {exc}")
        return redirect("drivers:cards")
    sandbox = bool(getattr(gateway, "sandbox", False))
    context = {
        "sandbox": sandbox,
        "client_secret": intent.client_secret,
        "publishable_key": getattr(gateway, "publishable_key", ""),
        "return_url": request.build_absolute_uri(reverse("drivers:card-return")),
        "confirm_url": reverse("billing:sandbox-setup-confirm", args=[intent.reference])
        if sandbox
        else "",
    }
    response = render(request, "drivers/card_add.html", context)
    if not sandbox:
        response._csp_update = STRIPE_CSP  # type: ignore[attr-defined]
    return response


@require_GET
@driver_required
def card_return(request: HttpRequest) -> HttpResponse:
    try:
        card = services.card_setup_finish(
            profile=request_profile(request), setup_intent=request.GET.get("setup_intent", "")
        )
    except (ValidationError, GatewayError, PermissionDenied) as exc:
        _error(request, exc)
        return redirect("drivers:cards")
    messages.success(request, f"Card ending {card.last4} saved.")
    return redirect("drivers:cards")


@require_POST
@driver_required
def card_default(request: HttpRequest, card_id: int) -> HttpResponse:
    try:
        card = services.card_set_default(profile=request_profile(request), card_id=card_id)
    except PermissionDenied as exc:
        raise Http404(str(exc)) from exc
    messages.success(request, f"Card ending {card.last4} is now your default card.")
    return redirect("drivers:cards")


@require_POST
@driver_required
def card_remove(request: HttpRequest, card_id: int) -> HttpResponse:
    try:
        services.card_remove(profile=request_profile(request), card_id=card_id)
    except PermissionDenied as exc:
        raise Http404(str(exc)) from exc
    except (ValidationError, GatewayError) as exc:
        _error(request, exc)
        return redirect("drivers:cards")
    messages.success(request, "Card removed.")
    return redirect("drivers:cards")


@require_GET
@driver_required
def subscriptions(request: HttpRequest) -> HttpResponse:
    profile = request_profile(request)
    mine = list(selectors.subscriptions_for(profile))
    # A plan the driver already has (active) is not offered again (issue 35 item 20).
    active = {s.plan_id for s in mine if s.status == "active"}
    plans = [p for p in selectors.plans_offered() if p.pk not in active]
    return render(
        request,
        "drivers/subscriptions.html",
        {
            "subscriptions": mine,
            "plans": plans,
            "first_month": first_month_terms(timezone.now()),
            "has_card": selectors.cards_for(profile).exists(),
        },
    )


def first_month_terms(now: datetime) -> dict:
    """What subscribing today pays for: the full monthly fee now covers the rest of this month
    (billing.services.subscription_subscribe), then the fee on the 1st. Said before subscribing,
    so nobody learns afterwards that 6 days cost a whole month."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    days = (end - now.astimezone(UTC)).days + 1
    return {"days": min(days, (end - start).days), "last": end - timedelta(days=1), "next": end}


@require_POST
@driver_required
def start(request: HttpRequest, station_id: str) -> HttpResponse:
    """POST from a charger's page: start with the saved card, one tap (issue 35 item 19)."""
    from guest.selectors import charger_for_station_id
    from guest.services import StartRefused

    charger = charger_for_station_id(station_id)
    if charger is None:
        raise Http404("No such charger")
    connector = request.POST.get("connector", "")
    landing = reverse("guest:landing", args=[charger.station_id])
    # A few ASCII digits: int() of 5,000 digits raised ValueError (a 500).
    if not (connector.isascii() and connector.isdecimal() and len(connector) <= 4):
        messages.error(request, "Choose a port.")
        return redirect(landing)
    try:
        gs = services.driver_start(
            profile=request_profile(request),
            charger=charger,
            connector_id=int(connector),
            email=request.user.email,  # type: ignore[union-attr]
            site_url=request.build_absolute_uri("/").rstrip("/"),
            price_version=request.POST.get("price_version", "")[:32],
        )
    except StartRefused as refused:
        messages.error(request, refused.message)
        return redirect(landing)
    except ValidationError as exc:
        _error(request, exc)
        return redirect("drivers:cards")
    return redirect("guest:session", key=gs.key)


@require_POST
@driver_required
def subscribe(request: HttpRequest, plan_id: int) -> HttpResponse:
    try:
        subscription = services.subscribe(profile=request_profile(request), plan_id=plan_id)
    except (ValidationError, GatewayError) as exc:
        _error(request, exc)
        return redirect("drivers:subscriptions")
    messages.success(
        request,
        f"Subscribed to {subscription.plan.name}. Next charge on "
        f"{date_text(subscription.paid_until, zone_or_utc(subscription.plan.property.timezone))}."
        if subscription.paid_until
        else "Subscribed.",
    )
    return redirect("drivers:subscriptions")


@require_POST
@driver_required
def subscription_cancel(request: HttpRequest, subscription_id: int) -> HttpResponse:
    try:
        subscription = services.subscription_cancel(
            profile=request_profile(request), subscription_id=subscription_id
        )
    except PermissionDenied as exc:
        raise Http404(str(exc)) from exc
    ends = subscription.ends_at
    messages.success(
        request,
        f"Cancelled. No further fees; your plan lasts until {ends:%Y-%m-%d}."
        if ends
        else "Cancelled.",
    )
    return redirect("drivers:subscriptions")


@require_GET
@driver_required
def sessions(request: HttpRequest) -> HttpResponse:
    profile = request_profile(request)
    # Each session with what its meter signed ("Signed by the meter: verified"), or None.
    history = [
        (gs, signed_meter_values(gs.charging_session) if gs.charging_session else None)
        for gs in selectors.sessions_for(profile)
    ]
    return render(
        request,
        "drivers/sessions.html",
        {
            "sessions": history,
            "email": services.verified_email(profile),
            "invoices": selectors.invoices_for(profile),
        },
    )


@require_POST
@driver_required
def sessions_claim(request: HttpRequest) -> HttpResponse:
    try:
        count = services.sessions_claim(profile=request_profile(request))
    except ValidationError as exc:
        _error(request, exc)
        return redirect("drivers:sessions")
    messages.success(
        request,
        f"{count} guest session(s) added to your history."
        if count
        else "No other guest sessions were paid with your email.",
    )
    return redirect("drivers:sessions")


@require_GET
@driver_required
def session_receipt(request: HttpRequest, session_id: int) -> HttpResponse:
    gs = selectors.session_get(request_profile(request), session_id)
    if gs is None:
        raise Http404("No such session in your history.")
    context = receipt_context(gs)
    context["support_query"] = urlencode({"station": gs.charger.station_id})
    # The guest's receipt under the account's own header (its menu, signed in).
    context["driver_account"] = True
    return render(request, "guest/receipt.html", context)


@require_http_methods(["GET", "POST"])
@driver_required
def account_delete(request: HttpRequest) -> HttpResponse:
    """Delete the account: confirmed with the password, since nothing can be restored."""
    error = ""
    if request.method == "POST":
        if not request.user.check_password(request.POST.get("password", "")):
            error = "The password is not right."
        else:
            user = request.user
            logout(request)
            try:
                services.account_delete(user=user)
            except GatewayError as exc:
                # The processor is asked first: nothing of the account is erased here yet.
                said = f"Your account was not deleted: {exc} Sign in again to retry."
                return render(request, "drivers/delete.html", {"error": said}, status=503)
            return render(request, "drivers/deleted.html")
    return render(request, "drivers/delete.html", {"error": error}, status=400 if error else 200)
