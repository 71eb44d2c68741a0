"""Portal shell: the dashboard, and the role checks every portal view goes through."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.dispatch import Signal
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from chargers.models import ChargingSession
from chargers.selectors import chargers_for, sessions_for

from .charts import bar_chart
from .models import Membership, Organization
from .selectors import organization_ids_for, role_in

# Billing answers this (it sits above this app, so it is asked, never imported):
# receivers get organization_ids (None = all) and since/until, and return
# [(currency, Decimal amount), ...] of revenue in that window.
dashboard_revenue = Signal()


def require_role(user, organization_id: int | None, *, edit: bool = False, owner: bool = False) -> str:
    """Return the user's role in the organization, or raise.

    Not a member: 404 (the object does not exist for them). Member without the right: 403.
    """
    role = role_in(user, organization_id)
    if role is None:
        raise Http404("Not found")
    if owner and role != Membership.Role.OWNER:
        raise PermissionDenied("Only owners may do this.")
    if edit and role not in (Membership.Role.OWNER, Membership.Role.MANAGER):
        raise PermissionDenied("Your role is read-only.")
    return role


def editable_organizations(user) -> QuerySet:
    """Organizations where the user may change things (owner or manager)."""
    if user.is_staff:
        return Organization.objects.all()
    return Organization.objects.filter(
        memberships__user=user, memberships__role__in=[Membership.Role.OWNER, Membership.Role.MANAGER]
    ).distinct()


def _energy_kwh(queryset) -> float:
    total = queryset.filter(meter_stop_wh__isnull=False).aggregate(
        wh=Sum(F("meter_stop_wh") - F("meter_start_wh"))
    )["wh"]
    return round((total or 0) / 1000, 2)


def _revenue(organization_ids, since, until) -> list[tuple[str, object]]:
    totals: dict[str, object] = {}
    for _receiver, answer in dashboard_revenue.send(
        sender=None, organization_ids=organization_ids, since=since, until=until
    ):
        for currency, amount in answer or []:
            totals[currency] = totals.get(currency, 0) + amount
    return sorted(totals.items())


@login_required
def dashboard(request):
    chargers = list(chargers_for(request.user))
    online = [c for c in chargers if c.is_online()]
    faulted = [
        c for c in chargers
        if any(conn.status == "Faulted" or conn.error_code not in ("", "NoError") for conn in c.connectors.all())
    ]
    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_ago = today - timedelta(days=29)
    sessions = sessions_for(request.user)
    completed = sessions.filter(status=ChargingSession.Status.COMPLETED)
    per_day = dict(
        completed.filter(started_at__gte=month_ago)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .annotate(wh=Sum(F("meter_stop_wh") - F("meter_start_wh")))
        .values_list("day", "wh")
    )
    points = []
    for i in range(30):
        day = (month_ago + timedelta(days=i)).date()
        points.append((day.strftime("%d %b"), round((per_day.get(day) or 0) / 1000, 1)))
    org_ids = organization_ids_for(request.user)
    context = {
        "chargers_total": len(chargers),
        "online": len(online),
        "offline": len(chargers) - len(online),
        "faulted": faulted,
        "active_sessions": sessions.filter(status=ChargingSession.Status.ACTIVE).count(),
        "recent_sessions": sessions.order_by("-started_at")[:5],
        "energy_today": _energy_kwh(completed.filter(started_at__gte=today)),
        "energy_30d": _energy_kwh(completed.filter(started_at__gte=month_ago)),
        "sessions_30d": sessions.filter(started_at__gte=month_ago).count(),
        "revenue_today": _revenue(org_ids, today, now),
        "revenue_30d": _revenue(org_ids, month_ago, now),
        "chart": bar_chart(points, unit="kWh"),
        "has_memberships": org_ids is None or bool(org_ids),
        "offline_chargers": [c for c in chargers if not c.is_online()][:5],
    }
    return render(request, "backoffice/dashboard.html", context)


def search_q(text: str, *fields: str) -> Q:
    """Return a Q matching `text` (case-insensitive substring) in any of the fields."""
    q = Q()
    for field in fields:
        q |= Q(**{f"{field}__icontains": text})
    return q
