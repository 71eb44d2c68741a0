"""The portal's Alerts page (Uptime › Alerts): an organization's alert rules, added, changed,
switched off and deleted in plain words; the same rules as /api/v1/alert-rules/."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from backoffice.tenancy import readable_organization_ids, require_role, writable_organizations

from ..alert_forms import AlertRuleForm
from ..models import AlertDelivery, AlertRule
from ..services import recipients
from ..services.alert_rules import alert_rule_delete, alert_rule_save


def _site_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _rules(user: Any) -> QuerySet[AlertRule]:
    ids = readable_organization_ids(user)
    rules = AlertRule.objects.select_related("organization")
    if ids is not None:
        rules = rules.filter(organization_id__in=ids)
    return rules.order_by("organization__name", "kind", "id")


def _undelivered(rules: list[AlertRule]) -> dict[int, list[AlertDelivery]]:
    """Per rule, its recipients whose latest alert event has not reached them (being retried, or
    given up): the host reads that its alerts are not getting through."""
    latest = (
        AlertDelivery.objects.filter(alert__rule__in=rules)
        .values("alert__rule_id", "channel", "target")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
    )
    failing = AlertDelivery.objects.filter(pk__in=list(latest)).exclude(
        status=AlertDelivery.Status.SENT
    )
    by_rule: dict[int, list[AlertDelivery]] = {}
    for delivery in failing.filter(attempts__gt=0).select_related("alert").order_by("id"):
        by_rule.setdefault(delivery.alert.rule_id, []).append(delivery)
    return by_rule


def _rows(rules: list[AlertRule], user: Any) -> list[dict]:
    writable = {o.pk for o in writable_organizations(user)}
    undelivered = _undelivered(rules)
    confirmed: dict[int, set[str]] = {}
    for rule in rules:
        named = [e.strip().lower() for e in rule.email or [] if e and e.strip()]
        confirmed.setdefault(rule.organization_id, set()).update(
            recipients.confirmed_among(rule.organization_id, named)
        )
    return [
        {
            "rule": rule,
            "recipients": [
                (e, e in confirmed[rule.organization_id])
                for e in dict.fromkeys(e.strip().lower() for e in rule.email or [] if e.strip())
            ],
            "can_edit": rule.organization_id in writable,
            "undelivered": undelivered.get(rule.pk, []),
        }
        for rule in rules
    ]


@login_required
@require_http_methods(["GET", "POST"])
def alert_rules(request: HttpRequest) -> HttpResponse:
    organizations = writable_organizations(request.user).order_by("name")
    form = None
    if organizations.exists():
        form = AlertRuleForm(request.POST or None, organizations=organizations)
    if request.method == "POST":
        if form is None:
            return HttpResponse("Your role is read-only.", status=403)
        if form.is_valid():
            rule = alert_rule_save(rule=None, values=form.values(), site_url=_site_url(request))
            messages.success(request, f"Alert “{rule.get_kind_display()}” added.")
            return redirect("reliability:alert-rules")
    rules = list(_rules(request.user))
    return render(
        request,
        "reliability/alert_rules.html",
        {
            "rows": _rows(rules, request.user),
            "form": form,
            "many_organizations": organizations.count() > 1,
            "portal_section": "uptime",
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def alert_rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(_rules(request.user), pk=pk)
    require_role(request.user, rule.organization_id, edit=True)
    organizations = writable_organizations(request.user).filter(pk=rule.organization_id)
    form = AlertRuleForm(request.POST or None, organizations=organizations, rule=rule)
    if request.method == "POST" and form.is_valid():
        alert_rule_save(rule=rule, values=form.values(), site_url=_site_url(request))
        messages.success(request, f"Alert “{rule.get_kind_display()}” saved.")
        return redirect("reliability:alert-rules")
    return render(
        request,
        "reliability/alert_rule_edit.html",
        {"rule": rule, "form": form, "portal_section": "uptime"},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def alert_rule_remove(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(_rules(request.user), pk=pk)
    require_role(request.user, rule.organization_id, edit=True)
    words = rule.get_kind_display()
    alert_rule_delete(rule=rule)
    messages.success(request, f"Alert “{words}” deleted.")
    return redirect("reliability:alert-rules")
