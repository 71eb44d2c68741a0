"""Guest pages: Station ID entry, landing (prompts or start), session, stop, receipt, labels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from authorization.decisions import Context, decide
from authorization.services import guest_preview_facts
from backoffice.models import Property
from backoffice.providers import Provider
from backoffice.tenancy import readable
from chargers.models import Charger
from chargers.sessions.services import charger_facts

from .. import payments
from ..formatting import money, unit_price
from ..forms import StartForm, StationIdForm
from ..live import snapshot
from ..models import GuestSession
from ..prompts import PROMPTS, PromptCode, landing_prompt, not_allowed_reason
from ..ratelimit import client_ip, hit, rate_limited
from ..receipts import price_version_context, receipt_context
from ..selectors import (
    alternatives,
    charger_for_station_id,
    connector_statuses,
    guest_session_by_key,
    payment_timeout_s,
    port_max_kw,
    port_rows,
    ports_held_for_guests,
    station_facts,
    station_id_suggestions,
)
from ..services import (
    StartRefused,
    StopFailed,
    guest_cancel_or_stop,
    guest_hold_confirmed,
    guest_refusal_record,
    guest_session_finish,
    guest_start,
    guest_start_expire,
)


class SavedCardOffer(Protocol):
    """May this signed-in person start with a saved card at this charger? {"label": "Visa ending
    4242", "action": the URL to POST the port to}, or None."""

    def __call__(self, *, user: Any, charger: Any) -> dict | None: ...


# A signed-in driver starts with their saved card in one tap (issue 35 item 19). Drivers sit above
# this app, so they provide the answer (registered in drivers.apps).
saved_card_offer: Provider[SavedCardOffer] = Provider("landing saved card")

# Stripe.js and its Payment Element (iframes) on the payment page only (docs.stripe.com/security/guide#content-security-policy).
STRIPE_CSP = {
    "script-src": ["https://js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
}


def _rate_limited_page(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = render(request, "guest/rate_limited.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _prompt_page(
    request: HttpRequest,
    code: PromptCode,
    *,
    station_id: str,
    charger: Charger | None = None,
    detail: str = "",
    suggestions: list[str] | None = None,
    status: int = 200,
    connectors: list[tuple[int, str]] | None = None,
) -> HttpResponse:
    """Render a seed prompt in place of the start button, with its next steps and support link."""
    context: dict[str, Any] = {
        "prompt": PROMPTS[code],
        "code": code.value,
        "station_id": station_id,
        "detail": detail,
        "suggestions": suggestions or [],
        "now": timezone.now(),
        "form": StationIdForm(initial={"station_id": station_id}),
    }
    if charger is not None and code == PromptCode.OUT_OF_ORDER:
        context["alternatives"] = alternatives(charger)
        context["ports"] = port_rows(
            connectors if connectors is not None else connector_statuses(charger)
        )
    if charger is not None and code != PromptCode.PRIVATE_OWNER:
        context["property"] = charger.property  # never shown for privately owned chargers
    context["support_query"] = _support_query(station_id, PROMPTS[code].title)
    return render(request, "guest/prompt.html", context, status=status)


def _support_query(station_id: str, prompt: str) -> str:
    from urllib.parse import urlencode

    return urlencode(
        {
            "station_id": station_id,
            "prompt": prompt,
            "at": timezone.now().isoformat(timespec="seconds"),
        }
    )


def _invalid(request: HttpRequest, typed: str) -> HttpResponse:
    suggestions = station_id_suggestions(typed)
    if len(suggestions) == 1:
        # One charger is this close (case, spaces, one character): show it at once, and say so,
        # instead of asking for a second tap. Nothing starts before the guest confirms and pays.
        from urllib.parse import urlencode

        return redirect(
            reverse("guest:landing", args=[suggestions[0]])
            + "?"
            + urlencode({"typed": typed[:100]})
        )
    return _prompt_page(
        request, PromptCode.INVALID, station_id=typed, suggestions=suggestions, status=404
    )


@require_GET
def entry(request: HttpRequest) -> HttpResponse:
    """The Station ID form; a typed ID is looked up exactly after trimming surrounding spaces."""
    if "station_id" not in request.GET:
        return render(request, "guest/entry.html", {"form": StationIdForm()})
    allowed, retry_after = hit("lookup", client_ip(request))
    if not allowed:
        return _rate_limited_page(request, retry_after)
    form = StationIdForm(request.GET)
    if not form.is_valid():
        return render(request, "guest/entry.html", {"form": form}, status=400)
    typed = form.cleaned_data["station_id"]
    if charger_for_station_id(typed) is None:
        return _invalid(request, typed)
    return redirect("guest:landing", station_id=typed)


def _guest_precheck(charger: Charger) -> str | None:
    """Return the authorization engine's refusal for any guest here, before the guest pays
    (recorded for the host: see guest_refusal_record)."""
    facts = charger_facts(charger)
    decision = decide(guest_preview_facts(facts), facts, Context.REMOTE_APP, now=timezone.now())
    if decision.accepted:
        return None
    guest_refusal_record(charger=charger, decision=decision)
    return decision.reason


def _price(charger: Charger) -> dict | None:
    """The prices the guest pays. The processing fee is the host's cost (deducted from payouts),
    never charged to the guest, so it is not shown."""
    rate = payments.rate_for_charger(charger, timezone.now())
    if rate is None:
        return None
    fields = (
        "connection_fee",
        "energy_price_per_kwh",
        "time_price_per_hour",
        "idle_fee_per_minute",
        "idle_fee_cap",
    )
    currency = rate.property.currency
    # Amounts in the currency's own decimals, prices per unit at least in them (JPY 100, 40 / kWh).
    shown: dict[str, str | int | bool] = {
        name: (money if name in ("connection_fee", "idle_fee_cap") else unit_price)(
            getattr(rate, name), currency
        )
        for name in fields
    }
    shown["tax_percent"] = f"{rate.tax_percent.normalize():f}" if rate.tax_percent else ""
    shown["idle_grace_minutes"] = rate.idle_grace_minutes
    shown["prices_include_tax"] = rate.prices_include_tax
    for name in ("connection_fee", "time_price_per_hour", "idle_fee_per_minute"):
        if not getattr(rate, name):
            shown[name] = ""
    return {
        "rate": shown,
        "currency": rate.property.currency,
        "version": payments.price_version_key(rate),
        "since": rate.valid_from,
    }


def _ceiling() -> dict:
    from django.conf import settings

    from backoffice.env import env_float

    def value(name: str, default: float) -> str:
        number = getattr(settings, name, None)
        number = env_float(name, default) if number is None else number
        return f"{number:g}"

    return {"kwh": value("GUEST_SESSION_MAX_KWH", 60), "hours": value("GUEST_SESSION_MAX_HOURS", 4)}


def _ports(charger: Charger, connectors: list[tuple[int, str]]) -> list[dict]:
    """The ports as the start form offers them: one another guest is paying for is Reserved."""
    return port_rows(connectors, held=ports_held_for_guests(charger.pk))


def _landing_context(
    request: HttpRequest,
    charger: Charger,
    connectors: list[tuple[int, str]],
    form: StartForm | None = None,
    error: str = "",
) -> dict:
    ports = _ports(charger, connectors)
    selected = request.GET.get("c") or request.POST.get("connector")
    if form is None:
        initial: dict[str, int] = {}
        if (
            selected
            and selected.isdecimal()
            and any(p["id"] == int(selected) and p["startable"] for p in ports)
        ):
            initial["connector"] = int(selected)
        form = StartForm(ports=ports, initial=initial)
    gateway_name, sandbox = payments.gateway_info()
    kws = port_max_kw(charger)
    for port in ports:
        port["kw"] = kws.get(port["id"])
    return {
        "charger": charger,
        "property": charger.property,
        "ports": ports,
        "form": form,
        "error": error,
        "price": _price(charger),
        "sandbox": sandbox,
        "gateway_name": gateway_name,
        "hold": _hold(charger),
        "ceiling": _ceiling(),
        "any_free": any(p["startable"] for p in ports),
        "support_query": _support_query(charger.station_id, ""),
        "typed": (request.GET.get("typed") or "")[:100],
        "alternatives": [] if any(p["startable"] for p in ports) else alternatives(charger),
        # A signed-in driver starts with the saved card from one port picker; "Pay with another
        # card" (?card=other, or the guest form posted back with an error) shows the guest form.
        "saved_card": None
        if request.GET.get("card") == "other" or request.method == "POST"
        else _saved_card(request, charger),
        "first_free": next((p["id"] for p in ports if p["startable"]), None),
    }


def _saved_card(request: HttpRequest, charger: Charger) -> dict | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return saved_card_offer.call(user=user, charger=charger)


def _hold(charger: Charger) -> str:
    amount = payments.hold_amount(charger, timezone.now())
    prop = charger.property
    return "" if amount is None else money(amount, prop.currency if prop is not None else "")


def _landing_or_prompt(
    request: HttpRequest, charger: Charger, station_id: str
) -> list[tuple[int, str]] | HttpResponse:
    """The charger's connectors, or the prompt page that applies instead of the start form."""
    connectors = connector_statuses(charger)
    code = landing_prompt(station_facts(charger, connectors), today=charger.license_today())
    if code is not None:
        return _prompt_page(
            request, code, station_id=station_id, charger=charger, connectors=connectors
        )
    refusal = _guest_precheck(charger)
    if refusal is not None:
        return _prompt_page(
            request,
            PromptCode.NOT_ALLOWED,
            station_id=station_id,
            charger=charger,
            detail=not_allowed_reason(refusal),
        )
    return connectors


@require_GET
@rate_limited("lookup")
def landing(request: HttpRequest, station_id: str) -> HttpResponse:
    """/s/<station_id>: the prompt that applies, or the price and the start form."""
    charger = charger_for_station_id(station_id)
    if charger is None:
        return _invalid(request, station_id)
    connectors = _landing_or_prompt(request, charger, station_id)
    if isinstance(connectors, HttpResponse):
        return connectors
    return render(request, "guest/landing.html", _landing_context(request, charger, connectors))


@never_cache
@require_GET
@rate_limited("ports")
def ports(request: HttpRequest, station_id: str) -> HttpResponse:
    """The ports' state for the "all ports are in use" page, which checks it every 20 s."""
    from django.http import JsonResponse

    charger = charger_for_station_id(station_id)
    if charger is None:
        raise Http404("No such charger")
    rows = _ports(charger, connector_statuses(charger))
    return JsonResponse(
        {
            "any_free": any(p["startable"] for p in rows),
            "ports": [{"id": p["id"], "status": p["status"]} for p in rows],
        }
    )


@require_POST
@rate_limited("start")
def start(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_for_station_id(station_id)
    if charger is None:
        return _invalid(request, station_id)
    connectors = _landing_or_prompt(request, charger, station_id)
    if isinstance(connectors, HttpResponse):
        return connectors
    form = StartForm(request.POST, ports=_ports(charger, connectors))
    if not form.is_valid():
        return render(
            request,
            "guest/landing.html",
            _landing_context(request, charger, connectors, form),
            status=400,
        )
    data = form.cleaned_data
    try:
        gs = guest_start(
            charger=charger,
            connector_id=data["connector"],
            email=data["email"],
            site_url=request.build_absolute_uri("/").rstrip("/"),
            price_version=data.get("price_version") or "",
        )
    except StartRefused as refused:
        if refused.prompt is not None:
            return _prompt_page(
                request,
                refused.prompt,
                station_id=station_id,
                charger=charger,
                detail=refused.message if refused.prompt == PromptCode.NOT_ALLOWED else "",
            )
        context = _landing_context(
            request,
            charger,
            connector_statuses(charger),
            StartForm(request.POST, ports=_ports(charger, connectors)),
            refused.message,
        )
        return render(request, "guest/landing.html", context, status=409)
    return redirect("guest:pay", key=gs.key)


def _pay_page(
    request: HttpRequest, gs: GuestSession, *, error: str = "", status: int = 200
) -> HttpResponse:
    intent = payments.hold_get(gs.payment_reference)
    gateway_name, sandbox = payments.gateway_info()
    context = {
        "gs": gs,
        "charger": gs.charger,
        "property": gs.charger.property,
        "amount": money(intent.amount, intent.currency),
        "currency": intent.currency,
        "client_secret": intent.client_secret,
        "sandbox": sandbox,
        "publishable_key": payments.publishable_key(),
        "error": error,
        "return_url": request.build_absolute_uri(reverse("guest:pay-return", args=[gs.key])),
        "confirm_url": reverse("billing:sandbox-confirm", args=[gs.payment_reference])
        if sandbox
        else "",
        "support_query": _support_query(gs.charger.station_id, "Payment"),
    }
    response = render(request, "guest/pay.html", context, status=status)
    if not sandbox:
        response._csp_update = STRIPE_CSP  # type: ignore[attr-defined]
    return response


PROCESSOR_RETRY_AFTER_S = 30


def _processor_down_page(
    request: HttpRequest, gs: GuestSession, *, returning: bool
) -> HttpResponse:
    """The processor did not answer (down, 5xx, 429): what happened to the card, in plain words
    (a 503 the guest can reload), instead of a server error."""
    context = {
        "gs": gs,
        "charger": gs.charger,
        "returning": returning,
        "minutes": max(1, round(payment_timeout_s() / 60)),
        "support_query": _support_query(gs.charger.station_id, "Payment"),
    }
    response = render(request, "guest/processor_down.html", context, status=503)
    response["Retry-After"] = str(PROCESSOR_RETRY_AFTER_S)
    return response


@never_cache
@require_GET
def pay(request: HttpRequest, key: str) -> HttpResponse:
    """The card step: the processor's element confirms the hold in the browser."""
    gs = _session_or_404(key)
    if gs.state != GuestSession.State.PENDING or gs.paid_at is not None or not gs.payment_reference:
        return redirect("guest:session", key=key)
    try:
        return _pay_page(request, gs)
    except payments.GatewayError:
        return _processor_down_page(request, gs, returning=False)


@never_cache
@require_GET
def pay_return(request: HttpRequest, key: str) -> HttpResponse:
    """Where the browser lands after confirming (and after 3-D Secure): read the intent from the
    processor, never from the query string, and start the charger if the hold is in place."""
    gs = _session_or_404(key)
    try:
        return _pay_returned(request, gs)
    except payments.GatewayError:
        return _processor_down_page(request, gs, returning=True)


def _pay_returned(request: HttpRequest, gs: GuestSession) -> HttpResponse:
    key = gs.key
    gs = guest_hold_confirmed(gs=gs)
    if gs.state != GuestSession.State.PENDING or gs.paid_at is not None:
        return redirect("guest:session", key=key)
    intent = payments.hold_get(gs.payment_reference)
    if intent.status == "requires_payment_method" and intent.decline_reason:
        return _pay_page(
            request, gs, error=f"{intent.decline_reason} Please try another card.", status=402
        )
    return _pay_page(
        request, gs, error="The payment is not finished yet. Please complete it below."
    )


def _session_or_404(key: str) -> GuestSession:
    gs = guest_session_by_key(key)
    if gs is None:
        raise Http404("No such guest session")
    return gs


@never_cache
@require_GET
def session(request: HttpRequest, key: str) -> HttpResponse:
    gs = _session_or_404(key)
    if gs.state == GuestSession.State.STARTING:
        # Reading is never what expires a hold, but the page must not show a stale "waiting".
        if guest_start_expire(guest_session_id=gs.pk):
            gs = _session_or_404(key)
    snap = snapshot(gs)
    return render(
        request,
        "guest/session.html",
        {
            "gs": gs,
            "snap": snap,
            "price_version": price_version_context(gs),
            "charger": gs.charger,
            "property": gs.charger.property,
            "support_query": _support_query(
                gs.charger.station_id, "Charging did not start" if gs.failure_code else ""
            ),
            "ws_path": f"/ws/guest/{gs.key}/",
        },
    )


@require_POST
def stop(request: HttpRequest, key: str) -> HttpResponse:
    gs = _session_or_404(key)
    try:
        guest_cancel_or_stop(gs=gs)
    except StopFailed as failed:
        gs = _session_or_404(key)
        return render(
            request,
            "guest/session.html",
            {
                "gs": gs,
                "snap": snapshot(gs),
                "charger": gs.charger,
                "property": gs.charger.property,
                "error": str(failed),
                "support_query": _support_query(gs.charger.station_id, ""),
                "ws_path": f"/ws/guest/{gs.key}/",
            },
            status=409,
        )
    return redirect("guest:session", key=key)


@never_cache
@require_GET
def receipt(request: HttpRequest, key: str) -> HttpResponse:
    gs = _session_or_404(key)
    session = gs.charging_session
    if (
        gs.state == GuestSession.State.CHARGING
        and session is not None
        and session.status == "completed"
    ):
        # The charger ended it but no worker settled it yet: settle now (idempotent), so the
        # receipt link in the guest's hand always works.
        guest_session_finish(session_id=session.pk)
        gs = _session_or_404(key)
    if gs.state in (
        GuestSession.State.PENDING,
        GuestSession.State.STARTING,
        GuestSession.State.CHARGING,
    ):
        return redirect("guest:session", key=key)
    context = receipt_context(gs)
    context["support_query"] = _support_query(gs.charger.station_id, "")
    return render(request, "guest/receipt.html", context)


@never_cache
@require_GET
def receipt_pdf(request: HttpRequest, key: str) -> HttpResponse:
    """The numbered receipt as a PDF; 404 until the session has one (finished and priced)."""
    from django.conf import settings

    from ..receipt_pdf import receipt_pdf as render_pdf

    gs = _session_or_404(key)
    if gs.state != GuestSession.State.FINISHED:
        raise Http404("No receipt yet")
    context = receipt_context(gs)
    receipt = context.get("receipt")
    if receipt is None or context.get("cost") is None:
        raise Http404("No receipt for this session")
    body = render_pdf(context, collector=getattr(settings, "SITE_NAME", "EV Backoffice"))
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="receipt-{receipt.reference}.pdf"'
    return response


@require_GET
def location_access_help(request: HttpRequest) -> HttpResponse:
    return render(request, "guest/location_access.html")


# -- printable QR labels (hosts) --------------------------------------------------------------


def _label_rows(request: HttpRequest, chargers: Iterable[Charger]) -> list[dict]:
    from ..qr import landing_url, qr_svg

    base = request.build_absolute_uri("/")
    rows: list[dict] = []
    for charger in chargers:
        url = landing_url(base, charger.station_id)
        rows.append({"charger": charger, "connector_id": None, "url": url, "svg": qr_svg(url)})
        ports = sorted(c.connector_id for c in charger.connectors.all() if c.connector_id > 0)
        if len(ports) > 1:
            for cid in ports:
                url = landing_url(base, charger.station_id, cid)
                rows.append(
                    {"charger": charger, "connector_id": cid, "url": url, "svg": qr_svg(url)}
                )
    return rows


def _entry_url(request: HttpRequest) -> str:
    from ..qr import landing_url

    return landing_url(request.build_absolute_uri("/"), "").rstrip("/") + "/"


@login_required
@require_GET
def label_charger(request: HttpRequest, station_id: str) -> HttpResponse:
    from chargers.web.selectors import charger_for_user

    from ..qr import landing_url, qr_svg

    charger = charger_for_user(request.user, station_id)
    if charger is None:
        raise Http404("No such charger")
    port = request.GET.get("c", "")
    if port.isdecimal():  # one port's label: /s/labels/charger/<id>/?c=2
        url = landing_url(request.build_absolute_uri("/"), charger.station_id, int(port))
        labels = [{"charger": charger, "connector_id": int(port), "url": url, "svg": qr_svg(url)}]
    else:
        labels = _label_rows(request, [charger])
    return render(
        request,
        "guest/labels.html",
        {
            "title": f"QR label – {charger.station_id}",
            "labels": labels,
            "paper": "letter" if request.GET.get("paper") == "letter" else "a4",
            "entry_url": _entry_url(request),
        },
    )


@login_required
@require_GET
def label_sheet(request: HttpRequest, property_id: int) -> HttpResponse:
    prop = (
        readable(Property.objects.select_related("organization"), request.user)
        .filter(pk=property_id)
        .first()
    )
    if prop is None:
        raise Http404("No such property")
    chargers = (
        Charger.objects.filter(property=prop).prefetch_related("connectors").order_by("station_id")
    )
    return render(
        request,
        "guest/labels.html",
        {
            "title": f"QR labels – {prop.name}",
            "labels": _label_rows(request, chargers),
            "property": prop,
            "paper": "letter" if request.GET.get("paper") == "letter" else "a4",
            "entry_url": _entry_url(request),
        },
    )
