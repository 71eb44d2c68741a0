"""Chargers > View > Proxy: which backoffices the charger is connected to, which one leads, and
their live connection state. Owners and managers add, edit, remove and choose the Leader."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backoffice.templatetags.when import when, when_seconds
from chargers.proxy import services
from chargers.proxy.links import LIVE_QUEUE_MAX
from chargers.proxy.models import Backoffice
from chargers.web.proxy_forms import BackofficeForm, LeaderTimeoutForm
from chargers.web.views import charger_or_404, tab_context


def _editable(request: HttpRequest, station_id: str):  # type: ignore[no-untyped-def]
    charger = charger_or_404(request.user, station_id)
    context = tab_context(request, charger, "proxy")
    if request.method == "POST" and not context["can_edit"]:
        raise PermissionDenied("Your role in this organization is read-only.")
    return charger, context


def _rows(charger) -> list[dict]:  # type: ignore[no-untyped-def]
    backoffices = list(charger.backoffices.order_by("id"))
    upstream_leads = any(b.is_leader for b in backoffices)
    ours = {
        "id": None,
        "name": f"{getattr(settings, 'SITE_NAME', 'EV Backoffice')} (this system)",
        "url": "",
        "leader": not upstream_leads,
        "status": "connected" if charger.connection_id else "disconnected",
        "connected_at": charger.connected_at,
        "disconnected_at": charger.disconnected_at,
        "last_message_at": charger.last_seen_at,
        "last_error": "",
        "allowed": "all (this system)",
    }
    rows = [ours]
    for b in backoffices:
        rows.append(
            {
                "id": b.pk,
                "name": b.name,
                "url": b.url,
                "leader": b.is_leader,
                "status": b.status,
                "connected_at": b.connected_at,
                "disconnected_at": b.disconnected_at,
                "last_message_at": b.last_message_at,
                "last_error": b.last_error,
                "dropped_text": dropped_text(b, charger),
                "object": b,
                "allowed": "all (Leader)"
                if b.is_leader
                else (", ".join(b.allowed_actions) or "none"),
            }
        )
    return rows


def dropped_text(backoffice: Backoffice, charger) -> str:  # type: ignore[no-untyped-def]
    """The Connection cell's words for live messages a slow backoffice was not given."""
    count = backoffice.dropped_count
    if not count:
        return ""
    what = "1 message" if count == 1 else f"{count:,} messages"
    return (
        f"{what} not passed on since {when(backoffice.dropped_first_at, charger)}, the last "
        f"{when_seconds(backoffice.dropped_last_at, charger)}: this backoffice took them too slowly "
        f"({LIVE_QUEUE_MAX:,} were already waiting). Only status and other live messages are "
        "dropped so; start, meter values and stop are always kept and delivered."
    )


@login_required
def charger_proxy(request: HttpRequest, station_id: str) -> HttpResponse:
    charger, context = _editable(request, station_id)
    context.update(
        {
            "rows": _rows(charger),
            "form": BackofficeForm(version=charger.ocpp_version),
            "timeout_form": LeaderTimeoutForm(
                initial={"proxy_leader_timeout_s": charger.proxy_leader_timeout_s}
            ),
        }
    )
    return render(request, "chargers/charger_proxy.html", context)


@login_required
def charger_proxy_state(request: HttpRequest, station_id: str) -> JsonResponse:
    """The live connection state the Proxy tab refreshes every few seconds."""
    charger = charger_or_404(request.user, station_id)
    charger.refresh_from_db()
    return JsonResponse(
        {
            "rows": [
                {
                    "id": r["id"],
                    "status": r["status"],
                    "leader": r["leader"],
                    "last_error": r["last_error"],
                    "last_message_at": r["last_message_at"].isoformat()
                    if r["last_message_at"]
                    else None,
                    # As the page writes it: the location's zone, named (issue 35 item 6).
                    "last_message_text": when_seconds(r["last_message_at"], charger),
                    "dropped_text": r.get("dropped_text", ""),
                }
                for r in _rows(charger)
            ]
        }
    )


@login_required
def charger_proxy_edit(
    request: HttpRequest, station_id: str, pk: int | None = None
) -> HttpResponse:
    charger, context = _editable(request, station_id)
    if not context["can_edit"]:
        raise PermissionDenied("Your role in this organization is read-only.")
    backoffice = get_object_or_404(Backoffice, pk=pk, charger=charger) if pk is not None else None
    initial = {}
    if backoffice is not None:
        initial = {
            "name": backoffice.name,
            "url": backoffice.url,
            "role": backoffice.role,
            "allowed_actions": backoffice.allowed_actions,
        }
    form = BackofficeForm(request.POST or None, initial=initial, version=charger.ocpp_version)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.backoffice_save(
                charger,
                backoffice=backoffice,
                name=data["name"],
                url=data["url"],
                role=data["role"],
                allowed_actions=list(data["allowed_actions"]),
                password=data["password"] if data["password"] or backoffice is None else None,
            )
        except ValidationError as exc:
            for field, errors in (
                exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
            ):
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            verb = "updated" if backoffice else "added"
            messages.success(
                request,
                f"{saved.name} {verb}. This system connects to it as {charger.station_id} now.",
            )
            return redirect("chargers:charger-proxy", station_id=charger.station_id)
    context.update({"form": form, "backoffice": backoffice})
    return render(request, "chargers/charger_proxy_form.html", context)


@login_required
@require_POST
def charger_proxy_leader(request: HttpRequest, station_id: str) -> HttpResponse:
    charger, _ = _editable(request, station_id)
    raw = request.POST.get("backoffice", "")
    backoffice = (
        get_object_or_404(Backoffice, pk=int(raw), charger=charger) if raw.isdigit() else None
    )
    services.backoffice_make_leader(backoffice, charger=charger)
    name = backoffice.name if backoffice else "This system"
    messages.success(
        request,
        f"{name} is now the Leader: its answers reach {charger.station_id} from the next message.",
    )
    return redirect("chargers:charger-proxy", station_id=charger.station_id)


@login_required
@require_POST
def charger_proxy_delete(request: HttpRequest, station_id: str, pk: int) -> HttpResponse:
    charger, _ = _editable(request, station_id)
    backoffice = get_object_or_404(Backoffice, pk=pk, charger=charger)
    services.backoffice_delete(backoffice)
    messages.success(
        request, f"{backoffice.name} removed: {charger.station_id} is no longer forwarded to it."
    )
    return redirect("chargers:charger-proxy", station_id=charger.station_id)


@login_required
@require_POST
def charger_proxy_timeout(request: HttpRequest, station_id: str) -> HttpResponse:
    charger, _ = _editable(request, station_id)
    form = LeaderTimeoutForm(request.POST)
    if form.is_valid():
        services.charger_set_leader_timeout(charger, form.cleaned_data["proxy_leader_timeout_s"])
        messages.success(request, "Saved.")
    else:
        messages.error(request, "Give a number of seconds between 1 and 60.")
    return redirect("chargers:charger-proxy", station_id=charger.station_id)
