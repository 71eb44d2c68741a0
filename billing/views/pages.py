"""Portal pages: rates of a location, payouts with their breakdown, refunds, statements,
reconciliation, and the self-service subscription page."""

from __future__ import annotations

import uuid
import zoneinfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from backoffice.models import Organization, Property
from backoffice.tenancy import (
    can_write,
    owns,
    readable,
    require_owner_somewhere,
    require_role,
)
from chargers.sessions.payer import PAYER_TEXT, Payer
from chargers.web.views import session_payer

from .. import scheduled_reports
from ..forms import (
    RateForm,
    ReconciliationForm,
    RefundForm,
    ReportScheduleForm,
    SellerForm,
    StatementForm,
    rate_initial,
)
from ..gateways import GatewayError
from ..models import (
    BillingSettings,
    Payment,
    Payout,
    Rate,
    ReconciliationImport,
    ReportSchedule,
    StatementJob,
    Subscription,
)
from ..money import round_money
from ..price_shown import price_version
from ..selectors import (
    location_tax_mode,
    organization_zone,
    organization_zones,
    payout_breakdown,
    payout_overview,
    rate_in_force,
    rates_for_property,
)
from ..services import rates, refunds, sessions, subscriptions
from ..services.reconciliation import reconciliation_create
from ..statements import statement_path, statement_request


def _location_time(prop):
    """Dates on the rate pages are entered and shown in the location's own time zone."""
    return timezone.override(zoneinfo.ZoneInfo(prop.timezone))


@login_required
def rate_list(request, property_id: int):
    prop = get_object_or_404(Property.objects.select_related("organization"), pk=property_id)
    with _location_time(prop):
        return _rate_list(request, prop)


def _scope_charger(prop, value):
    """The charger of the location a new price is for (`?charger=` or the form's), if any."""
    if not str(value or "").isdigit():
        return None
    return prop.chargers.filter(pk=int(value)).first()


def _rate_list(request, prop):
    can_edit = require_role(request.user, prop.organization_id).can_write
    form = None
    changes = None
    in_force = None
    if can_edit:
        now = timezone.now()
        scope = _scope_charger(prop, (request.POST or request.GET).get("charger"))
        in_force = rate_in_force(prop.pk, scope, now)
        initial = rate_initial(in_force, charger_id=scope.pk if scope else None, now=now)
        if in_force is None and (mode := location_tax_mode(prop.pk)) is not None:
            initial["prices_include_tax"] = mode  # the location's tax mode stays as it was
        form = RateForm(request.POST or None, property=prop, user=request.user, initial=initial)
        if request.method == "POST" and form.is_valid() and "review" in request.POST:
            # Show what changes against the price in force, before anything is saved.
            changes = form.changes(in_force)
        elif request.method == "POST" and form.is_valid():
            try:
                rates.rate_save(
                    rate=form.instance,
                    prices_include_tax=form.cleaned_data["prices_include_tax"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(
                    request, "Rate saved. New sessions starting from its valid-from time use it."
                )
                return redirect("billing:rate-list", property_id=prop.pk)
    elif request.method == "POST":
        raise PermissionDenied("Your role is read-only.")
    return render(
        request,
        "billing/rate_list.html",
        {
            "property": prop,
            "rates": rates_for_property(prop.pk),
            "form": form,
            "can_edit": can_edit,
            "changes": changes,
            "in_force": in_force,
            "portal_section": "prices",
        },
        status=400 if request.method == "POST" and changes is None else 200,
    )


@login_required
def price_overview(request):
    """GET /billing/prices/: every location with the price in force now, to change it."""
    now = timezone.now()
    rows = []
    for prop in readable(Property.objects.select_related("organization"), request.user).order_by(
        "name"
    ):
        in_force = [
            r
            for r in rates_for_property(prop.pk).filter(valid_from__lte=now)
            if r.valid_until is None or r.valid_until > now
        ]
        location_rate = next((r for r in in_force if r.charger_id is None), None)
        rows.append(
            {
                "property": prop,
                "rate": location_rate,
                "charger_rates": sum(1 for r in in_force if r.charger_id is not None),
                "can_edit": can_write(request.user, prop.organization_id),
            }
        )
    return render(request, "billing/price_overview.html", {"rows": rows})


@login_required
def rate_edit(request, rate_id: int):
    rate = get_object_or_404(Rate.objects.select_related("property", "charger"), pk=rate_id)
    require_role(request.user, rate.property.organization_id, edit=True)
    with _location_time(rate.property):
        return _rate_edit(request, rate)


def _rate_edit(request, rate):
    form = RateForm(request.POST or None, instance=rate, property=rate.property, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            rates.rate_save(rate=form.instance)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, "Rate updated. Sessions already priced keep the rate they started under."
            )
            return redirect("billing:rate-list", property_id=rate.property_id)
    return render(
        request,
        "billing/rate_edit.html",
        {"rate": rate, "form": form, "portal_section": "prices"},
        status=400 if request.method == "POST" else 200,
    )


# The payment's session with what says who paid (chargers.web.views.session_payer).
PAYMENT_ROW_RELATED = (
    "session__charger__property",
    "session__token",
    "session__guest_session",
    "session__terminal_payment",
)


@login_required
def payout_list(request):
    organizations = require_owner_somewhere(request.user, "Only owners see payouts.")
    org_ids = [o.pk for o in organizations]
    payouts = list(
        Payout.objects.filter(organization_id__in=org_ids).select_related(
            "organization", "rolled_into"
        )[:200]
    )
    zones = organization_zones(org_ids)
    for payout in payouts:  # its period's days are its organization's (midnight there)
        payout.zone = zones[payout.organization_id]  # type: ignore[attr-defined]
    payments = list(
        Payment.objects.filter(organization_id__in=org_ids, status=Payment.Status.CAPTURED)
        .select_related(*PAYMENT_ROW_RELATED)
        .defer("session__terminal_payment__token_data")
        .order_by("-created_at")[:50]
    )
    for pay in payments:
        # A driver's saved card and a guest's card are told apart as on the sessions page.
        pay.payer_text = PAYER_TEXT[session_payer(pay.session)] if pay.session else ""
    jobs = StatementJob.objects.filter(organization_id__in=org_ids).order_by("-created_at")[:20]
    reconciliations = (
        ReconciliationImport.objects.order_by("-created_at")[:10] if request.user.is_staff else []
    )
    accounts = {
        row.organization_id: row
        for row in BillingSettings.objects.filter(organization_id__in=org_ids)
    }
    payout_accounts = [{"organization": o, "settings": accounts.get(o.pk)} for o in organizations]
    sellers = [
        {
            "organization": o,
            "form": SellerForm(
                initial={
                    "seller_name": getattr(accounts.get(o.pk), "seller_name", ""),
                    "vat_number": getattr(accounts.get(o.pk), "vat_number", ""),
                },
                prefix=f"seller-{o.pk}",
            ),
        }
        for o in organizations
    ]
    return render(
        request,
        "billing/payout_list.html",
        {
            "payouts": payouts,
            "overview": payout_overview(organizations, timezone.now()),
            "payments": payments,
            "jobs": jobs,
            "organizations": organizations,
            "payout_accounts": payout_accounts,
            "sellers": sellers,
            "statement_form": StatementForm(organizations=organizations),
            "reconciliation_form": ReconciliationForm() if request.user.is_staff else None,
            "reconciliations": reconciliations,
        },
    )


@login_required
@require_POST
def seller_details(request, organization_id: int):
    """Save the organization's name and VAT number as the seller on its receipts (owners)."""
    require_role(request.user, organization_id, owner=True)
    form = SellerForm(request.POST, prefix=f"seller-{organization_id}")
    if form.is_valid():
        rates.seller_details_set(organization_id=organization_id, **form.cleaned_data)
        messages.success(request, "Saved: your next receipts carry these details.")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect(f"{reverse('billing:payout-list')}#receipt-seller")


@login_required
def payout_detail(request, payout_id: int):
    payout = get_object_or_404(Payout.objects.select_related("organization"), pk=payout_id)
    require_role(request.user, payout.organization_id, owner=True)
    return render(
        request,
        "billing/payout_detail.html",
        {
            # The latest reconciliation's findings (each run of the report or of Stripe's payouts records its own).
            "payout": payout,
            "breakdown": payout_breakdown(payout),
            "issues": payout.issues.filter(
                reconciliation_id=payout.issues.order_by("-reconciliation_id").values(
                    "reconciliation_id"
                )[:1],
            ).select_related("reconciliation"),
        },
    )


@login_required
def payment_refund(request, payment_id: int):
    payment = get_object_or_404(
        Payment.objects.select_related(*PAYMENT_ROW_RELATED).defer(
            "session__terminal_payment__token_data"
        ),
        pk=payment_id,
    )
    require_role(request.user, payment.organization_id, owner=True)
    # A driver's account payment is not a guest's (issue 51 item 3): name who paid.
    payer = session_payer(payment.session) if payment.session else None
    who = "driver" if payer == Payer.DRIVER else "guest"
    form = RefundForm(
        request.POST or None,
        initial={"amount": payment.refundable, "idempotency_key": uuid.uuid4().hex},
    )
    if request.method == "POST" and form.is_valid():
        try:
            refund = refunds.refund_issue(
                payment=payment,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                source="support" if request.user.is_staff else "host",
                user=request.user,
                idempotency_key=f"portal:{form.cleaned_data['idempotency_key']}",
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        except refunds.RefundUnanswered as exc:
            form.add_error(None, str(exc))
        except GatewayError as exc:
            form.add_error(None, f"The payment processor refused the refund: {exc}")
        else:
            messages.success(
                request,
                f"Refunded {round_money(refund.amount, payment.currency)} {payment.currency}. "
                f"It appears on the {who}'s receipt and is deducted from the next payout.",
            )
            return redirect("billing:payout-list")
    return render(
        request,
        "billing/payment_refund.html",
        {
            "payment": payment,
            "form": form,
            "who": who,
            "payer_text": PAYER_TEXT[payer] if payer is not None else "",
        },
    )


@login_required
@require_POST
def statement_create(request):
    organizations = require_owner_somewhere(request.user, "Only owners see payouts.")
    form = StatementForm(request.POST, organizations=organizations)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect("billing:payout-list")
    data = form.cleaned_data
    _job, new = statement_request(
        organization_id=int(data["organization"]),
        kind=data["kind"],
        date_from=data["date_from"],
        date_to=data["date_to"],
        user=request.user,
    )
    messages.success(
        request,
        "The statement is being prepared; the progress bar shows how far it is."
        if new
        else "This statement is already being prepared; the progress bar shows how far it is.",
    )
    return redirect("billing:payout-list")


def _owned_job(request, job_id: int) -> StatementJob:
    job = get_object_or_404(StatementJob, pk=job_id)
    require_role(request.user, job.organization_id, owner=True)
    return job


@login_required
def statement_progress(request, job_id: int):
    job = _owned_job(request, job_id)
    return JsonResponse(
        {
            "status": job.status,
            "percent": job.percent,
            "processed": job.processed,
            "total": job.total,
            "error": job.error,
            "download": f"/billing/statements/{job.pk}/download/" if job.status == "done" else None,
        }
    )


@login_required
def statement_download(request, job_id: int):
    job = _owned_job(request, job_id)
    path = statement_path(job)
    if path is None:
        raise Http404("The statement is not ready.")
    return FileResponse(
        open(path, "rb"),
        as_attachment=True,
        filename=f"statement-{job.kind}-{job.date_from}-{job.date_to}.csv",
        content_type="text/csv",
    )


@login_required
@require_POST
def reconciliation_upload(request):
    if not request.user.is_staff:
        raise PermissionDenied("Bank reports are reconciled by the platform team.")
    form = ReconciliationForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file.")
        return redirect("billing:payout-list")
    upload = form.cleaned_data["report"]
    try:
        content = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        messages.error(request, "The report must be a UTF-8 CSV file.")
        return redirect("billing:payout-list")
    record = reconciliation_create(content=content, filename=upload.name, user=request.user)
    return redirect("billing:reconciliation-detail", reconciliation_id=record.pk)


@login_required
def reconciliation_detail(request, reconciliation_id: int):
    if not request.user.is_staff:
        raise Http404("Not found")
    record = get_object_or_404(ReconciliationImport, pk=reconciliation_id)
    return render(
        request,
        "billing/reconciliation_detail.html",
        {
            "record": record,
            "issues": record.issues.select_related("payout"),
        },
    )


@login_required
def session_cost_detail(request, session_id: int):
    """The line-by-line answer to "why is this session so expensive?" for hosts and support."""
    from chargers.web.selectors import sessions_for

    session = get_object_or_404(
        sessions_for(request.user).select_related("charger__property"), pk=session_id
    )
    prop = session.charger.property
    membership = require_role(request.user, prop.organization_id) if prop else None
    cost, rate, subscription, facts = sessions.session_cost_explained(session)
    payments = Payment.objects.filter(session=session).prefetch_related("refunds")
    with timezone.override(zoneinfo.ZoneInfo(prop.timezone if prop else "UTC")):
        return render(
            request,
            "billing/session_cost.html",
            {
                "session": session,
                "cost": cost,
                "rate": rate,
                "version": price_version(session),
                "subscription": subscription,
                "facts": facts,
                "payments": payments,
                "is_owner": owns(membership),
                "portal_section": "sessions",
                "charging_minutes": cost.charging_seconds // 60,
                "idle_minutes": cost.idle_seconds // 60,
            },
        )


def subscription_manage(request, manage_key: str):
    """Self-service account page reached by the unguessable link sent at sign-up."""
    subscription = get_object_or_404(
        Subscription.objects.select_related("plan", "plan__property"), manage_key=manage_key
    )
    if request.method == "POST" and request.POST.get("action") == "cancel":
        subscription = subscriptions.subscription_cancel(subscription=subscription)
        messages.success(
            request, "Your subscription is cancelled. No further monthly fees will be charged."
        )
        return redirect("billing:subscription-manage", manage_key=manage_key)
    charges = subscription.charges.select_related("session").order_by("-started_at")[:20]
    return render(
        request,
        "billing/subscription_manage.html",
        {"subscription": subscription, "charges": charges},
    )


@login_required
def report_schedule(request, organization_id: int):
    """The organization's scheduled reports: frequency, files and recipients (owners)."""
    require_role(request.user, organization_id, owner=True)
    schedule = (
        ReportSchedule.objects.filter(organization_id=organization_id)
        .prefetch_related("recipients")
        .first()
    )
    initial = (
        {
            "frequency": schedule.frequency,
            "uptime": schedule.uptime,
            "kpis": schedule.kpis,
            "revenue": schedule.revenue,
            "enabled": schedule.enabled,
            "recipients": list(schedule.recipients.all()),
        }
        if schedule
        else {"uptime": True, "kpis": True, "revenue": True, "enabled": True}
    )
    status = 200
    if request.method == "POST":
        form = ReportScheduleForm(request.POST, organization_id=organization_id)
        if form.is_valid():
            data = form.cleaned_data
            scheduled_reports.schedule_save(
                organization_id=organization_id,
                frequency=data["frequency"],
                uptime=data["uptime"],
                kpis=data["kpis"],
                revenue=data["revenue"],
                enabled=data["enabled"],
                recipient_ids=[u.pk for u in data["recipients"]],
            )
            messages.success(request, "Saved: the next report goes out after its period ends.")
            return redirect("billing:report-schedule", organization_id=organization_id)
        status = 400
    else:
        form = ReportScheduleForm(initial=initial, organization_id=organization_id)
    organization = get_object_or_404(Organization, pk=organization_id)
    return render(
        request,
        "billing/report_schedule.html",
        {
            "form": form,
            "organization": organization,
            "schedule": schedule,
            "zone": organization_zone(organization_id),
            "portal_section": "payouts",
        },
        status=status,
    )
