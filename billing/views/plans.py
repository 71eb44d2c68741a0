"""A location's monthly plans in the portal (Prices › the location › Monthly plans): owners and
managers offer one and stop offering one; every member reads them with their subscribers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backoffice.models import Property
from backoffice.tenancy import can_write, readable, require_role

from ..forms import PlanForm
from ..models import Subscription, SubscriptionPlan
from ..services import subscriptions


@login_required
def plan_list(request: HttpRequest, property_id: int) -> HttpResponse:
    prop = get_object_or_404(readable(Property.objects.all(), request.user), pk=property_id)
    may_write = can_write(request.user, prop.organization_id)
    form = PlanForm(request.POST or None)
    if request.method == "POST":
        require_role(request.user, prop.organization_id, edit=True)
        if form.is_valid():
            plan = subscriptions.plan_create(property_id=prop.pk, **form.cleaned_data)
            messages.success(request, f"{plan.name} is offered to drivers at {prop.name}.")
            return redirect("billing:plan-list", property_id=prop.pk)
    plans = SubscriptionPlan.objects.filter(property=prop).annotate(
        subscribers=Count(
            "subscriptions", filter=Q(subscriptions__status=Subscription.Status.ACTIVE)
        )
    )
    return render(
        request,
        "billing/plan_list.html",
        {
            "property": prop,
            "plans": plans.order_by("-active", "name", "pk"),
            "form": form if may_write else None,
            "portal_section": "prices",
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def plan_stop(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(
        SubscriptionPlan.objects.filter(
            property__in=readable(Property.objects.all(), request.user)
        ),
        pk=plan_id,
    )
    require_role(request.user, plan.property.organization_id, edit=True)
    holding = subscriptions.plan_stop(plan=plan)
    messages.success(
        request,
        f"{plan.name} is no longer offered"
        + (f"; its {holding} subscriber(s) keep it until they cancel." if holding else "."),
    )
    return redirect("billing:plan-list", property_id=plan.property_id)
