"""Portal shell: the dashboard, and the role checks every portal view goes through."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from .models import Membership, Organization
from .selectors import organization_ids_for, role_in

# Higher apps fill the dashboard (this app may not import them, so it asks): the chargers
# app answers with charger, session and energy figures (a dict merged into the template
# context); receivers get user, organization_ids (None = all), today, since and now.
dashboard_figures = Signal()

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
    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_ago = today - timedelta(days=29)
    org_ids = organization_ids_for(request.user)
    context = {
        "has_memberships": org_ids is None or bool(org_ids),
        "revenue_today": _revenue(org_ids, today, now),
        "revenue_30d": _revenue(org_ids, month_ago, now),
    }
    for _receiver, figures in dashboard_figures.send(
        sender=None, user=request.user, organization_ids=org_ids, today=today, since=month_ago, now=now
    ):
        context.update(figures or {})
    return render(request, "backoffice/dashboard.html", context)


def search_q(text: str, *fields: str) -> Q:
    """Return a Q matching `text` (case-insensitive substring) in any of the fields."""
    q = Q()
    for field in fields:
        q |= Q(**{f"{field}__icontains": text})
    return q
