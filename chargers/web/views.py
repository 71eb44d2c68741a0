"""Portal pages for chargers (list, View tabs, commands), locations and charging sessions.

Every view resolves objects through the user-scoped selectors, so another organization's
charger, location or session is a 404; writes check the role (viewers are read-only).
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db.models import Count, Model, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from authorization.decisions import Context
from authorization.models import AuthorizationDecision, Token
from authorization.services import decide_sync, token_group_add_uid, token_group_create
from backoffice.admin_paging import CAP, EstimatedCountPaginator
from backoffice.charts import bar_chart, line_chart
from backoffice.csv_export import csv_writer
from backoffice.formatting import csv_datetime, duration_text, zone_or_utc
from backoffice.models import Membership, Organization, Property
from backoffice.tenancy import membership_in, readable, require_role, writable
from chargers.devices import commands
from chargers.models import (
    Backoffice,
    Charger,
    ChargerNotice,
    ChargingSession,
    Command,
    MeterValue,
    OcppMessage,
)
from chargers.ocpp.clock import split_notes
from chargers.ocpp.energy import wh_text
from chargers.sessions.payer import PAYER_TEXT
from chargers.sessions.services import charger_facts
from chargers.web.filters import ChargerFilter, SessionFilter, charger_state, chargers_with_state
from chargers.web.forms import (
    ChargerAddForm,
    ChargerSettingsForm,
    CommandForm,
    LocationAccessForm,
    LogFilterForm,
    ReimbursementForm,
    WhitelistForm,
)
from chargers.web.providers import (
    session_price,
    session_settlement,
    signed_meter_values,
)
from chargers.web.selectors import (
    CARD_SEARCH,
    charger_for_user,
    chargers_for,
    deviations_of,
    message_log,
    sessions_for,
)
from chargers.web.session_rows import (
    SESSION_ROW_DEFERRED,
    SESSION_ROW_RELATED,
    energy_so_far,
    session_costs,
    session_duration_s,
    session_payer,
)

LOG_PAGE = 50
M = TypeVar("M", bound=Model)
TYPE_NAMES: dict[int | None, str] = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
ID_TAG_ACTIONS = ("Authorize", "StartTransaction", "TransactionEvent")


def charger_or_404(user: Any, station_id: str) -> Charger:
    charger = charger_for_user(user, station_id)
    if charger is None:
        raise Http404("No such charger")
    return charger


def tab_context(request: HttpRequest, charger: Charger, tab: str) -> dict:
    membership = membership_in(request.user, charger.organization_id)
    return {
        "charger": charger,
        "tab": tab,
        "role": membership.role if membership else None,
        "can_edit": membership is not None and membership.can_write,
        "state": charger_state(charger),
    }


# -- Dashboard figures (the dashboard lives in backoffice: provided in ChargersConfig.ready) --------


def dashboard_charger_figures(
    *, user: Any, today: datetime, since: datetime, now: datetime, **kwargs: Any
) -> dict[str, Any]:
    """Return charger states, sessions and energy for the user's dashboard."""
    with_state = chargers_with_state(user)
    chargers = [charger for charger, _ in with_state]
    states = {charger.pk: state for charger, state in with_state}
    sessions = sessions_for(user)
    completed = sessions.filter(
        status=ChargingSession.Status.COMPLETED,
        meter_stop_wh__isnull=False,
        meter_start_wh__isnull=False,  # no reading reported: no energy to add up
    )
    energy = ChargingSession.energy_sql()
    per_day = dict(
        completed.filter(started_at__gte=since)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .annotate(wh=Sum(energy))
        .values_list("day", "wh")
    )
    points = []
    for i in range((today - since).days + 1):
        day = (since + timedelta(days=i)).date()
        # A bar height, not an amount: float is fine here (energy stays Decimal everywhere else).
        points.append((day.strftime("%d %b"), round(float(per_day.get(day) or 0) / 1000, 1)))

    def kwh(wh: Any) -> float:
        return round((wh or 0) / 1000, 2)

    # Today's and the 30 days' energy are the chart's days added up (the same sessions, the same
    # local days): no second and third aggregate over a month of sessions (~20 ms at 1,000 chargers).

    online = sum(1 for c in chargers if c.is_online())
    return {
        "chargers_total": len(chargers),
        "online": online,
        "offline": len(chargers) - online,
        "faulted": [c for c in chargers if states[c.pk] == "faulted"],
        "offline_chargers": [c for c in chargers if not c.is_online()][:5],
        "active_sessions": sessions.filter(status=ChargingSession.Status.ACTIVE).count(),
        "recent_sessions": sessions.order_by("-started_at")[:5],
        "energy_today": kwh(per_day.get(today.date())),
        "energy_30d": kwh(sum(wh for wh in per_day.values() if wh)),
        "sessions_30d": sessions.filter(started_at__gte=since).count(),
        "chart": bar_chart(points, unit="kWh"),
    }


# -- chargers list ------------------------------------------------------------------------------


@login_required
def charger_list(request: HttpRequest) -> HttpResponse:
    filterset = ChargerFilter(
        request.GET or None, queryset=chargers_for(request.user), user=request.user
    )
    queryset = filterset.qs if filterset.is_bound else chargers_for(request.user)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    rows = [(c, charger_state(c)) for c in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "chargers/charger_list.html",
        {
            "filter": filterset,
            "page": page,
            "rows": rows,
            "query": query.urlencode(),
            "any_chargers": chargers_for(request.user).exists(),
            # Locations where the user may add a charger (owners and managers).
            "add_locations": list(
                writable(
                    readable(Property.objects.select_related("organization"), request.user),
                    request.user,
                )[:20]
            ),
            "energy_settings": _energy_settings(request.user),
        },
    )


def _energy_settings(user: Any) -> list[tuple[Organization, bool]]:
    """The user's organizations with their "Set chargers to report their energy meter"
    setting, and whether the user may change it (owners and managers). Staff change it in
    the admin."""
    memberships = Membership.objects.filter(user=user).select_related("organization")
    return [(m.organization, m.can_write) for m in memberships.order_by("organization__name")]


# -- Chargers > View: Overview ----------------------------------------------------------------


POWER_SOURCE = "power"  # the load manager's commands (power.enforcement)


def _power_commands(charger: Charger) -> dict[str, Any] | None:
    """The load manager's power limits in one line: how many in the last hour, how many
    refused, and the latest in words ("Connector 1 limited to 10.6 A by the site budget")."""
    sent = Command.objects.filter(charger=charger, source=POWER_SOURCE)
    latest = sent.first()
    if latest is None:
        return None
    hour = sent.filter(created_at__gte=timezone.now() - timedelta(hours=1))
    refused = (
        hour.exclude(status=Command.Status.ANSWERED, response__status="Accepted")
        .exclude(status=Command.Status.PENDING)
        .count()
    )
    return {"latest": latest, "last_hour": hour.count(), "refused": refused}


def _connectors_with_faults(charger: Charger) -> dict:
    """The connectors, each with the fault codes open on it (`c.faults`: name, who may cause
    it, class, source; reliability answers), and the faults of ports with no connector row."""
    from chargers.web.providers import port_faults

    faults = port_faults.call(charger)
    connectors = list(charger.connectors.all())
    for c in connectors:
        c.faults = faults.pop(c.connector_id, [])  # type: ignore[attr-defined]  # for the page
    return {"connectors": connectors, "unplaced_faults": sorted(faults.items())}


def overview_context(
    request: HttpRequest,
    charger: Charger,
    form: CommandForm | None = None,
    settings_form: ChargerSettingsForm | None = None,
) -> dict:
    context = tab_context(request, charger, "overview")
    context.update(
        {
            **_connectors_with_faults(charger),
            "form": form or CommandForm(charger=charger, user=request.user),
            "settings_form": settings_form
            or ChargerSettingsForm(instance=charger, user=request.user),
            "recent_commands": [
                (
                    cmd,
                    cmd.note
                    or (json.dumps(cmd.payload, ensure_ascii=False) if cmd.payload else ""),
                )
                for cmd in Command.objects.filter(charger=charger)
                .exclude(source=POWER_SOURCE)
                .select_related("requested_by")[:10]
            ],
            "power_commands": _power_commands(charger),
            "active_sessions": ChargingSession.objects.filter(
                charger=charger, status=ChargingSession.Status.ACTIVE
            ),
            "command_timeout": settings.OCPP_CALL_TIMEOUT,
            "license_active": charger.license_active(),
            "restricted_groups": list(charger.token_groups.all()),
            "deviations": deviations_of(charger),
        }
    )
    from chargers.web.security_views import security_overview  # profile, password, security events

    context.update(security_overview(charger, staff=request.user.is_staff))
    return context


@login_required
def charger_detail(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    return render(request, "chargers/charger_overview.html", overview_context(request, charger))


@login_required
@require_POST
def charger_command(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    form = CommandForm(request.POST, charger=charger, user=request.user)
    if not form.is_valid():
        return render(
            request,
            "chargers/charger_overview.html",
            overview_context(request, charger, form=form),
            status=400,
        )
    action = form.cleaned_data["action"]
    label = dict(CommandForm.ACTIONS)[action]
    try:
        if action == CommandForm.REMOTE_START:
            from chargers.devices.remote import remote_start_sync

            decision, command = remote_start_sync(
                charger,
                id_tag=form.cleaned_data["token"].uid,
                connector_id=form.cleaned_data["connector_id"],
                source="portal",
                user_id=request.user.pk,
                once=True,
            )
            if command is None:
                messages.error(
                    request,
                    f"{label} refused before sending: {decision.status} – {decision.message}",
                )
                return redirect("chargers:charger-detail", charger.station_id)
        elif action == CommandForm.PUSH_LOCAL_LIST:
            from chargers.devices.local_list import local_list_push_sync

            command = local_list_push_sync(charger, user_id=request.user.pk)
        else:
            command = commands.send_command_sync(
                charger, action, form.payload(), source="portal", user_id=request.user.pk, once=True
            )
    except commands.AlreadyPending as exc:
        messages.warning(request, exc.told(label))
    except commands.ChargerOffline:
        messages.error(request, f"{label} was not sent: the charger is offline.")
    except commands.CommandTimeout as exc:
        messages.error(request, exc.told(label))
    except commands.InvalidCommand as exc:
        messages.error(request, f"{label} is not valid for this charger: {exc}")
    else:
        _report_command(request, label, command)
    return redirect("chargers:charger-detail", charger.station_id)


def _report_command(request: HttpRequest, label: str, command: Command) -> None:
    if command.status == Command.Status.ANSWERED:
        result = command.result_status or "done"
        level = messages.SUCCESS if result in ("Accepted", "Unlocked", "done") else messages.WARNING
        messages.add_message(request, level, f"{label}: the charger answered {result}.")
    elif command.status == Command.Status.ERROR:
        messages.error(
            request,
            f"{label}: the charger answered with an error: {command.error or command.response}",
        )
    else:
        messages.warning(request, f"{label}: {command.get_status_display()}.")


@login_required
@require_POST
def charger_settings(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    form = ChargerSettingsForm(request.POST, instance=charger, user=request.user)
    if not form.is_valid():
        return render(
            request,
            "chargers/charger_overview.html",
            overview_context(request, charger, settings_form=form),
            status=400,
        )
    form.save()
    messages.success(request, "Charger settings saved.")
    return redirect("chargers:charger-detail", charger.station_id)


# -- Chargers > View: Logs --------------------------------------------------------------------


def _pretty(payload: object) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False)


def _id_tag_status(result: OcppMessage | None) -> str:
    """The card's verdict in an answer: 1.6 idTagInfo.status, 2.0.1 idTokenInfo.status."""
    if result is None or result.message_type != 3 or not isinstance(result.payload, dict):
        return ""
    info = result.payload.get("idTagInfo")
    if not isinstance(info, dict):
        info = result.payload.get("idTokenInfo")
    return str(info.get("status", "")) if isinstance(info, dict) else ""


PARTNER_WINDOW = 50  # frames of the same charger searched for a CALL's answer (or an answer's CALL)


def _partner(charger: Charger, row: OcppMessage) -> OcppMessage | None:
    """Find the other half of a CALL/answer pair that is not on the page.

    Bounded to the PARTNER_WINDOW frames of this charger next to the row, using the
    (charger, id) index, so a page never scans the charger's whole history: OCPP peers
    answer a CALL before sending much else (unique ids are reused after a reboot, so
    the nearest match is the right one).
    """
    frames = OcppMessage.objects.filter(charger=charger)
    opposite = "out" if row.direction == "in" else "in"
    if row.message_type == 2:
        bound = (
            frames.filter(id__gt=row.id)
            .order_by("id")
            .values_list("id", flat=True)[PARTNER_WINDOW - 1 : PARTNER_WINDOW]
        )
        bound_id = next(iter(bound), None)
        candidates = frames.filter(
            id__gt=row.id,
            unique_id=row.unique_id,
            message_type__in=(3, 4),
            direction=opposite,
            # None matches IS NULL (the charger's own link); the stubs take no None here.
            backoffice_id=row.backoffice_id,  # type: ignore[misc]
        )
        if bound_id is not None:
            candidates = candidates.filter(id__lte=bound_id)
        return candidates.order_by("id").first()
    bound = (
        frames.filter(id__lt=row.id)
        .order_by("-id")
        .values_list("id", flat=True)[PARTNER_WINDOW - 1 : PARTNER_WINDOW]
    )
    bound_id = next(iter(bound), None)
    candidates = frames.filter(
        id__lt=row.id,
        unique_id=row.unique_id,
        message_type=2,
        direction=opposite,
        backoffice_id=row.backoffice_id,  # type: ignore[misc]  # as above: None is IS NULL
    )
    if bound_id is not None:
        candidates = candidates.filter(id__gte=bound_id)
    return candidates.order_by("-id").first()


def log_entries(charger: Charger, rows: list[OcppMessage]) -> list[dict]:
    """Group a page of log rows into entries: a CALL with its CALLRESULT/CALLERROR."""
    by_uid: dict[str, list[OcppMessage]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        if row.unique_id:
            by_uid.setdefault(row.unique_id, []).append(row)

    def on_page(row: OcppMessage) -> OcppMessage | None:
        opposite = "out" if row.direction == "in" else "in"
        # The proxy reuses the charger's unique id towards each upstream: pair within one link.
        same = [m for m in by_uid.get(row.unique_id, []) if m.backoffice_id == row.backoffice_id]
        if row.message_type == 2:
            return next(
                (
                    m
                    for m in same
                    if m.id > row.id and m.message_type in (3, 4) and m.direction == opposite
                ),
                None,
            )
        return next(
            (
                m
                for m in reversed(same)
                if m.id < row.id and m.message_type == 2 and m.direction == opposite
            ),
            None,
        )

    page_ids = {r.id for r in rows}
    entries: list[dict] = []
    seen: set[tuple[int | None, int | None]] = set()
    call: OcppMessage | None
    answer: OcppMessage | None
    for row in rows:
        partner = None
        if row.unique_id and row.message_type in (2, 3, 4):
            partner = on_page(row) or _partner(charger, row)
        if row.message_type == 2:
            call, answer = row, partner
        elif row.message_type in (3, 4):
            call, answer = partner, row
            if call is not None and call.id in page_ids:
                continue  # shown with its CALL
        else:
            call, answer = None, row
        key = (call.id if call else None, answer.id if answer else None)
        if key in seen:
            continue
        seen.add(key)
        entries.append(_entry(call, answer))
    if any(r.backoffice_id for r in rows):
        names = dict(Backoffice.objects.filter(charger=charger).values_list("id", "name"))
        for entry in entries:
            head = entry["call"] or entry["answer"]
            if head is not None and head.backoffice_id:
                entry["backoffice"] = names.get(
                    head.backoffice_id, f"removed backoffice #{head.backoffice_id}"
                )
    _attach_decisions(charger, entries)
    return entries


def _entry(call: OcppMessage | None, answer: OcppMessage | None) -> dict:
    head = call or answer
    assert head is not None  # an entry has a CALL, an answer or both
    id_tag = (call.id_tag if call else "") or ""
    status = _id_tag_status(answer) if head.action in ID_TAG_ACTIONS else ""
    violation, clock_note = split_notes(call.violation if call else "")
    return {
        "key": f"{head.unique_id or head.id}-{call.id if call else 'x'}",
        "unique_id": head.unique_id,
        "action": head.action or "(unreadable frame)",
        "call": call,
        "answer": answer,
        "call_type": TYPE_NAMES.get(call.message_type) if call else None,
        "answer_type": TYPE_NAMES.get(answer.message_type, "INVALID") if answer else None,
        "call_json": _pretty(call.payload) if call else "",
        "answer_json": (_pretty(answer.payload) if answer.payload is not None else answer.raw)
        if answer
        else "",
        "direction": head.direction,
        "timestamp": head.timestamp,
        "id_tag": id_tag if head.action in ID_TAG_ACTIONS else "",
        "status": status,
        "rejected": bool(status) and status != "Accepted",
        "is_error": bool(answer and answer.message_type == 4),
        "max_id": max(m.id for m in (call, answer) if m is not None),
        "decision": None,
        # Accepted although it broke the schema (transaction messages are never refused); a
        # time replaced because the charger's clock is wrong is said apart.
        "violation": violation,
        "clock_note": clock_note,
        # Frames with text the database cannot store are kept JSON-escaped in `raw`.
        "escaped": [m for m in (call, answer) if m is not None and m.escaped],
    }


def _attach_decisions(charger: Charger, entries: list[dict]) -> None:
    wanted = {
        e["unique_id"] for e in entries if e["call"] is not None and e["action"] in ID_TAG_ACTIONS
    }
    if not wanted:
        return
    times = [e["call"].timestamp for e in entries if e["call"] is not None]
    decisions: dict[str, list[AuthorizationDecision]] = {}
    # Bounded in time so the (station_id, created_at) index does the work.
    for d in AuthorizationDecision.objects.filter(
        station_id=charger.station_id,
        ocpp_unique_id__in=wanted,
        created_at__gte=min(times) - timedelta(minutes=2),
        created_at__lte=max(times) + timedelta(minutes=2),
    ):
        decisions.setdefault(d.ocpp_unique_id, []).append(d)
    for entry in entries:
        options = decisions.get(entry["unique_id"])
        if options and entry["call"] is not None:
            when = entry["call"].timestamp
            entry["decision"] = min(
                options, key=lambda d: abs((d.created_at - when).total_seconds())
            )


def _matches(
    row: OcppMessage,
    search: str,
    direction: str,
    mtype: str,
    link: str = "",
    refused_only: bool = False,
) -> bool:
    """The live view's filter: the same rules as chargers.web.selectors.message_log."""
    from chargers.ocpp.protocol import KNOWN_ACTIONS_V16

    if refused_only:
        status = _id_tag_status(row) if row.action in ID_TAG_ACTIONS else ""
        if not status or status == "Accepted":
            return False
        if search and search not in CARD_SEARCH and search not in KNOWN_ACTIONS_V16:
            call = _partner(row.charger, row)
            return call is not None and call.id_tag == search.strip()

    if link == "charger" and row.backoffice_id is not None:
        return False
    if link.isdigit() and row.backoffice_id != int(link):
        return False

    if direction and row.direction != direction:
        return False
    if mtype and TYPE_NAMES.get(row.message_type) != mtype:
        return False
    search = search.strip()
    if not search:
        return True
    if search in CARD_SEARCH:
        return row.action in CARD_SEARCH[search]
    if search in KNOWN_ACTIONS_V16:
        return row.action == search
    if row.id_tag == search:
        return True
    text = (
        json.dumps(row.payload, ensure_ascii=False).lower()
        if row.payload is not None
        else row.raw.lower()
    )
    return search.lower() in text or search.lower() in row.action.lower()


@login_required
def charger_logs(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    backoffices = list(charger.backoffices.order_by("id").values_list("id", "name"))
    form = LogFilterForm(request.GET or None, backoffices=backoffices)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    search, direction, mtype = (
        data.get("q") or "",
        data.get("direction") or "",
        data.get("type") or "",
    )
    link = data.get("link") or ""
    refused_only = bool(data.get("invalid"))
    context = tab_context(request, charger, "logs")
    whitelist_form = _whitelist_form(request, charger)

    if request.GET.get("after"):
        # Live view: the websocket said new rows exist; render only those, with the page's filters.
        try:
            after = int(request.GET["after"])
        except ValueError:
            return HttpResponse(status=400)
        # Oldest first and bounded: the client asks again from the last id it got, so a
        # burst is delivered in order, and a row written during this request is never skipped.
        new_rows = list(
            OcppMessage.objects.filter(charger=charger, id__gt=after).order_by("id")[:200]
        )
        fresh = [
            r
            for r in reversed(new_rows)
            if _matches(r, search, direction, mtype, link, refused_only)
        ]
        context.update(
            {
                "entries": log_entries(charger, fresh),
                "whitelist_form": whitelist_form,
                "next_url": request.GET.get("back", ""),
            }
        )
        response = render(request, "chargers/includes/_log_entries.html", context)
        response["X-Latest-Id"] = str(new_rows[-1].id if new_rows else after)
        if len(new_rows) == 200:
            response["X-More"] = "1"
        return response

    before = data.get("before")
    # Read before the page, so a frame written meanwhile reaches the live view (at worst twice).
    latest_id = (
        OcppMessage.objects.filter(charger=charger)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )
    rows = message_log(
        charger,
        search=search,
        direction=direction,
        message_type=mtype,
        link=link,
        before_id=before,
        limit=LOG_PAGE + 1,
        refused_only=refused_only,
    )
    has_more = len(rows) > LOG_PAGE
    rows = rows[:LOG_PAGE]
    filters = {
        k: v
        for k, v in (
            ("q", search),
            ("direction", direction),
            ("type", mtype),
            ("link", link),
            ("invalid", "on" if refused_only else ""),
        )
        if v
    }
    context.update(
        {
            "form": form if form.is_bound else LogFilterForm(backoffices=backoffices),
            "entries": log_entries(charger, rows),
            "older_url": f"?{urlencode({**filters, 'before': rows[-1].id})}" if has_more else "",
            "newest_url": f"?{urlencode(filters)}" if before else "",
            "live": not before,
            "latest_id": latest_id,
            "filters_json": json.dumps(filters),
            "whitelist_form": whitelist_form,
            "next_url": request.get_full_path(),
            "groups": whitelist_form.groups(),
            # Seed 001 says "type StartTransaction": say why Authorize rows are listed too.
            "card_search": search in CARD_SEARCH,
            "refused_only": refused_only,
        }
    )
    return render(request, "chargers/charger_logs.html", context)


def _whitelist_form(
    request: HttpRequest, charger: Charger, data: QueryDict | None = None
) -> WhitelistForm:
    return WhitelistForm(
        data,
        organization_id=charger.organization_id,
        user=request.user,
        restricting=charger_facts(charger).restricted_group_ids,
    )


@login_required
@require_POST
def charger_whitelist(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    membership = require_role(request.user, charger.organization_id, edit=True)
    form = _whitelist_form(request, charger, request.POST)
    back = request.POST.get("next") or reverse("chargers:charger-logs", args=[charger.station_id])
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("chargers:charger-logs", args=[charger.station_id])
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[f].label if f in form.fields else f}: {' '.join(str(m) for m in e)}"
            for f, e in form.errors.items()
        )
        messages.error(request, f"The UID was not whitelisted. {errors}")
        return redirect(back)
    group = form.cleaned_data["group"]
    created = group is None
    if created:
        group = token_group_create(
            organization_id=membership.organization_id, name=form.cleaned_data["new_group"]
        )
    token = token_group_add_uid(group=group, uid=form.cleaned_data["uid"])
    # Tell the host what the charger will now hear, from the same rules that answer it.
    facts = charger_facts(charger)
    preview = decide_sync(uid=token.uid, charger=facts, context=Context.LOCAL)
    text = f"UID {token.uid} is now in the {'new ' if created else ''}local token group “{group.name}”."
    if facts.restricted_group_ids and group.pk not in facts.restricted_group_ids:
        text += (
            f" That group does not restrict {charger.station_id}; this charger accepts only its own"
            " groups (Settings on the Overview tab, or the location's restricted groups)."
        )
    if preview.accepted:
        messages.success(
            request,
            f"{text} The next Authorize with this card at {charger.station_id} will be accepted.",
        )
    else:
        messages.warning(
            request, f"{text} It is still refused here ({preview.status}): {preview.message}"
        )
    return redirect(back)


# -- Chargers > View: Sessions, Authorizations (Proxy: chargers.web.proxy_views) ---------------------------------------------


def _keyset(
    request: HttpRequest, queryset: QuerySet[M], *, page_size: int = 50
) -> tuple[list[M], str]:
    """Return (rows, older_url) for newest-first keyset paging by id (?before=<id>)."""
    before: int | None
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        before = None
    if before:
        queryset = queryset.filter(id__lt=before)
    rows = list(queryset.order_by("-id")[: page_size + 1])
    older = ""
    if len(rows) > page_size:
        rows = rows[:page_size]
        query = request.GET.copy()
        query["before"] = str(rows[-1].pk)
        older = f"?{query.urlencode()}"
    return rows, older


@login_required
def charger_sessions(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    context = tab_context(request, charger, "sessions")
    rows, older = _keyset(
        request, ChargingSession.objects.filter(charger=charger).select_related("token")
    )
    context.update({"sessions": rows, "older_url": older})
    return render(request, "chargers/charger_sessions.html", context)


@login_required
def charger_authorizations(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    context = tab_context(request, charger, "authorizations")
    queryset = AuthorizationDecision.objects.filter(station_id=charger.station_id).select_related(
        "msp", "token"
    )
    status = request.GET.get("status", "")
    if status == "rejected":
        queryset = queryset.exclude(status="Accepted")
    elif status == "accepted":
        queryset = queryset.filter(status="Accepted")
    rows, older = _keyset(request, queryset)
    context.update({"decisions": rows, "older_url": older, "status": status})
    return render(request, "chargers/charger_authorizations.html", context)


@login_required
def decision_detail(request: HttpRequest, pk: int) -> HttpResponse:
    decision = get_object_or_404(
        AuthorizationDecision.objects.select_related("msp", "token"), pk=pk
    )
    charger = charger_or_404(request.user, decision.station_id)
    context = tab_context(request, charger, "authorizations")
    frames = []
    if decision.ocpp_unique_id:
        frames = log_entries(
            charger,
            list(
                OcppMessage.objects.filter(
                    charger=charger,
                    unique_id=decision.ocpp_unique_id,
                    timestamp__gte=decision.created_at - timedelta(minutes=5),
                    timestamp__lte=decision.created_at + timedelta(minutes=5),
                ).order_by("-id")[:10]
            ),
        )
    context.update(
        {
            "decision": decision,
            "entries": frames,
            "whitelist_form": _whitelist_form(request, charger),
            "next_url": request.get_full_path(),
        }
    )
    return render(request, "chargers/decision_detail.html", context)


# -- Add charger and its setup card -----------------------------------------------------------------


def _ocpp_urls(request: HttpRequest, station_id: str) -> tuple[str, str]:
    """(the URL to configure in the charger, the full URL it connects to with its Station ID)."""
    from urllib.parse import quote, urlsplit

    base = settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    url = f"{scheme}://{parts.netloc}/ocpp/"
    return url, url + quote(station_id, safe="")


def _setup_card_context(request: HttpRequest, charger: Charger, password: str | None) -> dict:
    import segno

    ocpp_url, full_url = _ocpp_urls(request, charger.station_id)
    guest_url = request.build_absolute_uri(reverse("guest:landing", args=[charger.station_id]))
    if settings.SITE_URL:
        guest_url = settings.SITE_URL + reverse("guest:landing", args=[charger.station_id])
    qr = segno.make(guest_url, error="m", micro=False).svg_inline(
        scale=5, border=2, dark="#000", light="#fff"
    )
    return {
        "charger": charger,
        "password": password,
        "ocpp_url": ocpp_url,
        "full_url": full_url,
        "guest_url": guest_url,
        "qr_svg": qr,
        "portal_section": "chargers",
        "label_url": reverse("guest:label-charger", args=[charger.station_id]),
    }


@login_required
def charger_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Locations > a location > Add charger. The generated password appears once, on the setup
    card this POST answers with (never in a redirect URL or a later page)."""
    from chargers.security.services import StationIdRefused, charger_create

    prop = get_object_or_404(
        readable(Property.objects.select_related("organization"), request.user), pk=pk
    )
    require_role(request.user, prop.organization_id, edit=True)
    form = ChargerAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            charger, password = charger_create(
                prop=prop,
                station_id=form.cleaned_data["station_id"],
                name=form.cleaned_data["name"],
                security_profile=form.cleaned_data["security_profile"],
                by_staff=request.user.is_staff,
            )
        except StationIdRefused as exc:
            form.add_error("station_id", str(exc))
        else:
            response = render(
                request,
                "chargers/charger_setup_card.html",
                {
                    **_setup_card_context(request, charger, password),
                    "just_added": True,
                },
            )
            response["Cache-Control"] = "no-store"  # the password must not stay in a cache
            return response
    return render(
        request,
        "chargers/charger_add.html",
        {
            "property": prop,
            "form": form,
            "portal_section": "locations",
        },
        status=400 if form.is_bound else 200,
    )


@login_required
def charger_setup_card(request: HttpRequest, station_id: str) -> HttpResponse:
    """The printable setup card again, without the password (only its hash is stored)."""
    charger = charger_or_404(request.user, station_id)
    return render(
        request, "chargers/charger_setup_card.html", _setup_card_context(request, charger, None)
    )


# -- Locations ------------------------------------------------------------------------------------


@login_required
def location_list(request: HttpRequest) -> HttpResponse:
    properties = readable(Property.objects.select_related("organization"), request.user).annotate(
        charger_count=Count("chargers", distinct=True),
        group_count=Count("restricted_token_groups", distinct=True),
    )
    q = request.GET.get("q", "").strip()
    if q:
        properties = properties.filter(Q(name__icontains=q) | Q(address__icontains=q))
    return render(request, "chargers/location_list.html", {"properties": properties, "q": q})


LOCATION_CHARGERS_PER_PAGE = 50


@login_required
def location_detail(
    request: HttpRequest, pk: int, reimbursement_form: ReimbursementForm | None = None
) -> HttpResponse:
    prop = get_object_or_404(
        readable(Property.objects.select_related("organization"), request.user), pk=pk
    )
    editable = require_role(request.user, prop.organization_id).can_write
    if request.method == "POST" and reimbursement_form is None:
        require_role(request.user, prop.organization_id, edit=True)
        form = LocationAccessForm(request.POST, instance=prop, user=request.user)
        if form.is_valid():
            form.save()
            messages.success(
                request, "Access settings saved. Chargers here follow them from their next request."
            )
            return redirect("chargers:location-detail", prop.pk)
        status = 400
    else:
        form = LocationAccessForm(instance=prop, user=request.user)
        status = 200
    if reimbursement_form is not None:
        status = 400  # the reimbursement form below came back with errors
    # A location may hold hundreds of chargers: they are listed a page at a time (the Chargers
    # list filters by location for more); the reimbursement form still offers all of them.
    here = chargers_for(request.user).filter(property=prop).order_by("station_id")
    page = Paginator(here, LOCATION_CHARGERS_PER_PAGE).get_page(request.GET.get("page"))
    chargers = [(c, charger_state(c)) for c in page]
    station_ids = list(here.values_list("station_id", flat=True))
    return render(
        request,
        "chargers/location_detail.html",
        {
            "page": page,
            "charger_count": page.paginator.count,
            "reimbursement_form": reimbursement_form or ReimbursementForm(station_ids=station_ids),
            "reimbursement_cards": _reimbursement_cards(prop, station_ids),
            "property": prop,
            "form": form,
            "can_edit": editable,
            "chargers": chargers,
            "restricted_groups": list(prop.restricted_token_groups.all()),
            "rates_url": f"/billing/properties/{prop.pk}/rates/",
        },
        status=status,
    )


def _reimbursement_cards(prop: Property, station_ids: list[str]) -> list[tuple]:
    """(token, its allowed chargers here, its allowed chargers elsewhere) for the location's cards."""

    here = set(station_ids)
    rows = []
    tokens = Token.objects.filter(organization_id=prop.organization_id).exclude(
        allowed_station_ids=[]
    )
    for token in tokens.order_by("uid"):
        allowed = set(token.allowed_station_ids or [])
        if allowed & here:
            rows.append((token, sorted(allowed & here), sorted(allowed - here)))
    return rows


@login_required
@require_POST
def location_reimbursement_add(request: HttpRequest, pk: int) -> HttpResponse:
    from authorization.services import token_reimbursement_allow

    prop = get_object_or_404(
        readable(Property.objects.select_related("organization"), request.user), pk=pk
    )
    require_role(request.user, prop.organization_id, edit=True)
    station_ids = list(
        Charger.objects.filter(property=prop)
        .order_by("station_id")
        .values_list("station_id", flat=True)
    )
    form = ReimbursementForm(request.POST, station_ids=station_ids)
    if not form.is_valid():
        return location_detail(request, pk, reimbursement_form=form)
    token = token_reimbursement_allow(
        organization_id=prop.organization_id,
        uid=form.cleaned_data["uid"],
        station_ids=form.cleaned_data["stations"],
        label=form.cleaned_data["label"],
    )
    messages.success(
        request,
        f"Card {token.uid} may charge at {', '.join(form.cleaned_data['stations'])}"
        f" and only at its {len(token.allowed_station_ids)} allowed charger(s).",
    )
    return redirect(reverse("chargers:location-detail", args=[prop.pk]) + "#reimbursement")


@login_required
@require_POST
def location_reimbursement_remove(request: HttpRequest, pk: int, token_pk: int) -> HttpResponse:
    from authorization.services import token_reimbursement_remove

    prop = get_object_or_404(
        readable(Property.objects.select_related("organization"), request.user), pk=pk
    )
    require_role(request.user, prop.organization_id, edit=True)
    token = get_object_or_404(Token, pk=token_pk, organization_id=prop.organization_id)
    here = list(Charger.objects.filter(property=prop).values_list("station_id", flat=True))
    token = token_reimbursement_remove(token=token, station_ids=here)
    if token.allowed_station_ids:
        messages.success(request, f"Card {token.uid} is no longer reimbursed at {prop.name}.")
    else:
        messages.warning(
            request,
            f"Card {token.uid} is no longer reimbursed at {prop.name}. It has no allowed "
            "chargers left, so it is no longer limited: it charges wherever your other rules allow.",
        )
    return redirect(reverse("chargers:location-detail", args=[prop.pk]) + "#reimbursement")


# -- Sessions ---------------------------------------------------------------------------------------


def _session_filter(request: HttpRequest) -> tuple[SessionFilter, QuerySet[ChargingSession]]:
    base = (
        sessions_for(request.user).select_related(*SESSION_ROW_RELATED).defer(*SESSION_ROW_DEFERRED)
    )
    filterset = SessionFilter(request.GET or None, queryset=base, user=request.user)
    queryset = filterset.qs if filterset.is_bound else base
    return filterset, queryset


@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    filterset, queryset = _session_filter(request)
    # Counted up to CAP + 1 (COUNT(*) over a million sessions was a third of the page's time):
    # past that the page says "more than 10,000" and the dates or the CSV export narrow it.
    paginator = EstimatedCountPaginator(queryset.order_by("-started_at", "-id"), 50)
    page = paginator.get_page(request.GET.get("page"))
    now = timezone.now()
    costs = session_costs(list(page.object_list))
    so_far = energy_so_far(list(page.object_list))
    for s in page.object_list:
        s.cost, s.cost_currency, s.cost_final = costs[s.pk]
        s.energy_so_far_wh = so_far.get(s.pk)
        s.payer_text = PAYER_TEXT[session_payer(s)]
        s.duration_text = duration_text((s.stopped_at or now) - s.started_at)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "chargers/session_list.html",
        {
            "filter": filterset,
            "page": page,
            "query": query.urlencode(),
            "total": page.paginator.count,
            "more_than": f"{CAP:,}" if page.paginator.count > CAP else "",
            "export_url": reverse("chargers:session-export")
            + (f"?{query.urlencode()}" if query else ""),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_HEADER = [
    "transaction_id",
    "station_id",
    "location",
    "connector_id",
    "id_tag",
    "token_label",
    "status",
    "started_at",
    "stopped_at",
    "meter_start_wh",
    "meter_stop_wh",
    "energy_wh",
    "stop_reason",
    "time_zone",
    # Appended (issue 51 item 3), so readers of the columns above keep working.
    "cost",
    "currency",
    "duration_s",
    "payer",
]


def _csv_row(
    s: ChargingSession,
    zone_name: str,
    zone: zoneinfo.ZoneInfo,
    cost: tuple[Decimal | None, str, bool],
) -> list[Any]:
    prop = s.charger.property
    amount, currency, _final = cost
    duration = session_duration_s(s)
    return [
        s.transaction_id,
        s.charger.station_id,
        prop.name if prop is not None else "",
        s.connector_id,
        s.id_tag,
        s.token.label if s.token is not None else "",
        s.status,
        csv_datetime(s.started_at, zone),
        csv_datetime(s.stopped_at, zone),
        wh_text(s.meter_start_wh),
        wh_text(s.meter_stop_wh),
        wh_text(s.energy_wh),
        s.stop_reason,
        zone_name,
        "" if amount is None else str(amount),
        currency,
        "" if duration is None else duration,
        PAYER_TEXT[session_payer(s)],
    ]


# Rows priced together in the CSV: the sessions still charging (or not priced yet) of each chunk
# are priced in one batch, so the export's queries grow with chunks, never with rows.
CSV_CHUNK = 2000


def _csv_rows(queryset: QuerySet[ChargingSession]) -> Iterator[str]:
    writer = csv_writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    rows = queryset.iterator(chunk_size=CSV_CHUNK)
    while True:
        chunk = list(islice(rows, CSV_CHUNK))
        if not chunk:
            return
        costs = session_costs(chunk)
        for s in chunk:
            # Local time of the session's location with its offset (2026-11-24T08:45:11+01:00).
            prop = s.charger.property
            name = prop.timezone if prop is not None else "UTC"
            zone = zones.get(name) or zones.setdefault(name, zone_or_utc(name))
            yield writer.writerow(_csv_row(s, name, zone, costs[s.pk]))


def _take(rows: Iterator[str], n: int) -> str:
    out = []
    for _ in range(n):
        try:
            out.append(next(rows))
        except StopIteration:
            break
    return "".join(out)


async def _csv_rows_async(queryset: QuerySet[ChargingSession]) -> AsyncIterator[str]:
    # Under ASGI a synchronous iterator would be read into memory whole before sending
    # (Django consumes it with list()); feed it in chunks instead. thread_sensitive keeps
    # every chunk on the request's thread, so the database cursor stays on one connection.
    rows = _csv_rows(queryset)
    while True:
        chunk = await sync_to_async(_take)(rows, 500)
        if not chunk:
            return
        yield chunk


@login_required
def session_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    filterset, queryset = _session_filter(request)
    if filterset.is_bound and not filterset.form.is_valid():
        return HttpResponse(
            "Invalid filters: " + filterset.form.errors.as_text(),
            status=400,
            content_type="text/plain",
        )
    queryset = queryset.order_by("-started_at", "-id")
    content: AsyncIterator[str] | Iterator[str] = (
        _csv_rows_async(queryset) if isinstance(request, ASGIRequest) else _csv_rows(queryset)
    )
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="sessions-{stamp}.csv"'
    # Lets the page show progress while the stream arrives.
    response["X-Total-Rows"] = str(queryset.count())
    return response


# (moment, kWh delivered so far) and (moment, kW): the session's two curves.
Series = list[tuple[datetime, Decimal]]


def _meter_series(session: ChargingSession) -> tuple[Series, Series]:
    energy: Series = []
    rows = MeterValue.objects.filter(session=session, value__isnull=False).order_by(
        "timestamp", "id"
    )
    power_by_time: dict[datetime, Decimal] = {}
    for mv in rows:
        value = mv.value
        if value is None:  # excluded by the query; the column is nullable
            continue
        unit = (mv.unit or "").lower()
        if (
            mv.measurand in ("", "Energy.Active.Import.Register")
            and mv.phase == ""
            and session.meter_start_wh is not None
        ):
            wh = value.scaleb(3) if unit == "kwh" else value
            energy.append((mv.timestamp, max((wh - session.meter_start_wh) / 1000, Decimal(0))))
        elif mv.measurand == "Power.Active.Import":
            kw = value if unit == "kw" else value / 1000
            # Sum the phases.
            power_by_time[mv.timestamp] = power_by_time.get(mv.timestamp, Decimal(0)) + kw
    power = sorted(power_by_time.items())
    # A stopped session ends at its StopTransaction reading, which is often later than the last
    # sample: the curve and its headline end there too (the figure the cost is priced on).
    if (
        session.energy_wh is not None
        and session.stopped_at
        and (not energy or energy[-1][0] < session.stopped_at)
    ):
        energy.append((session.stopped_at, max(session.energy_wh, Decimal(0)) / 1000))
    return energy, power


def session_decisions(session: ChargingSession) -> list[AuthorizationDecision]:
    """The decisions that belong to this session only: its card at its charger, from after the
    card's previous session there began (so an earlier session's Authorize is not shown) to a
    minute after this start, plus the StopTransaction check of this session; a decision naming
    another connector is left out."""
    station = session.charger.station_id
    start = session.received_start_at
    since = start - timedelta(minutes=10)
    previous = (
        ChargingSession.objects.filter(
            charger_id=session.charger_id, id_tag=session.id_tag, received_start_at__lt=start
        )
        .exclude(pk=session.pk)
        .order_by("-received_start_at")
        .values_list("received_start_at", flat=True)
        .first()
    )
    if previous is not None:
        since = max(since, previous + timedelta(minutes=1))
    until_stop = (session.received_stop_at or timezone.now()) + timedelta(minutes=1)
    rows = (
        AuthorizationDecision.objects.filter(station_id=station, uid=session.id_tag)
        .filter(
            Q(created_at__gte=since, created_at__lte=start + timedelta(minutes=1))
            | Q(context=Context.STOP_TRANSACTION, created_at__gt=start, created_at__lte=until_stop)
        )
        .exclude(Q(connector_id__isnull=False) & ~Q(connector_id__in=(0, session.connector_id)))
        .order_by("created_at")
    )
    return list(rows[:20])


def session_ev_needs(session: ChargingSession) -> list[ChargerNotice]:
    """The car's ISO 15118 charging needs and schedules told during the session (K15-K17)."""
    rows = ChargerNotice.objects.filter(
        charger_id=session.charger_id,
        evse_id=session.connector_id,
        action__in=("NotifyEVChargingNeeds", "NotifyEVChargingSchedule"),
        received_at__gte=session.received_start_at or session.started_at,
    )
    if session.received_stop_at is not None:
        rows = rows.filter(received_at__lte=session.received_stop_at)
    return list(rows.order_by("received_at")[:20])


def _session_meter_context(session: ChargingSession) -> dict:
    energy, power = _meter_series(session)
    local = timezone.localtime
    chart = line_chart(
        {
            "Energy": ("kWh", [(local(t), v) for t, v in energy]),
            "Power": ("kW", [(local(t), v) for t, v in power]),
        },
        pad_right=46,
    )
    return {
        "session": session,
        "chart": chart,
        "energy_points": len(energy),
        "power_points": len(power),
        "last_energy": energy[-1][1] if energy else None,
        "last_power": power[-1][1] if power else None,
        "price": session_price.call(session),
        "signature": signed_meter_values.call(session),
        "settlement": session_settlement.call(session),
        "live": session.status == ChargingSession.Status.ACTIVE,
    }


def _property_zone(session: ChargingSession) -> tzinfo:
    prop = session.charger.property
    return zoneinfo.ZoneInfo(prop.timezone) if prop else timezone.get_current_timezone()


@login_required
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(
        sessions_for(request.user)
        .select_related(*SESSION_ROW_RELATED)
        .defer(*SESSION_ROW_DEFERRED),
        pk=pk,
    )
    cost, currency, final = session_costs([session])[session.pk]
    prop = session.charger.property
    # Times in the property's zone, named on the page (the cost page uses the same zone).
    with timezone.override(_property_zone(session)):
        return render(
            request,
            "chargers/session_detail.html",
            {
                **_session_meter_context(session),
                "decisions": session_decisions(session),
                "ev_needs": session_ev_needs(session),
                "payer": PAYER_TEXT[session_payer(session)],
                "cost": cost,
                "cost_currency": currency,
                "cost_final": final,
                "duration": duration_text(
                    (session.stopped_at or timezone.now()) - session.started_at
                ),
                "zone_name": prop.timezone if prop else timezone.get_current_timezone_name(),
            },
        )


@login_required
def session_meter(request: HttpRequest, pk: int) -> HttpResponse:
    """The meter card alone: the session page polls it while the session charges."""
    session = get_object_or_404(sessions_for(request.user), pk=pk)
    with timezone.override(_property_zone(session)):
        response = render(
            request, "chargers/includes/_session_meter.html", _session_meter_context(session)
        )
    response["Cache-Control"] = "no-store"
    return response
