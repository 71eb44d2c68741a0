"""Portal shell: the dashboard, and the role checks every portal view goes through."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.views.decorators.http import require_POST

from .forms import InviteMemberForm, MemberRoleForm
from .models import Membership, Organization
from .selectors import organization_ids_for, role_in
from .services import member_add
from .tenancy import writable_organizations

# Higher apps fill the dashboard (this app may not import them, so it asks): the chargers
# app answers with charger, session and energy figures (a dict merged into the template
# context); receivers get user, organization_ids (None = all), today, since and now.
dashboard_figures = Signal()

# Billing answers this (it sits above this app, so it is asked, never imported):
# receivers get organization_ids (None = all) and since/until, and return
# [(currency, Decimal amount), ...] of revenue in that window.
dashboard_revenue = Signal()


def require_role(
    user, organization_id: int | None, *, edit: bool = False, owner: bool = False
) -> str:
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
    return writable_organizations(user)


def send_invitation(request, *, email: str, organization: Organization) -> None:
    """Email a new member the link to choose their password (the password-reset flow)."""
    invite = PasswordResetForm({"email": email})
    invite.is_valid()
    invite.save(
        request=request,
        use_https=request.is_secure(),
        subject_template_name="registration/invitation_subject.txt",
        email_template_name="registration/invitation_email.html",
        extra_email_context={
            "organization": organization.name,
            "inviter": request.user.get_username(),
        },
    )


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
        sender=None,
        user=request.user,
        organization_ids=org_ids,
        today=today,
        since=month_ago,
        now=now,
    ):
        context.update(figures or {})
    return render(request, "backoffice/dashboard.html", context)


def _owned_organizations(user):
    if user.is_staff:
        return Organization.objects.all()
    return Organization.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.OWNER
    ).distinct()


def _other_owners(membership: Membership) -> int:
    return (
        Membership.objects.filter(
            organization_id=membership.organization_id, role=Membership.Role.OWNER
        )
        .exclude(pk=membership.pk)
        .count()
    )


@login_required
def members(request):
    """Owners: who is in the organization, with which role; invite, change role, remove."""
    organizations = list(_owned_organizations(request.user))
    if not organizations:
        raise PermissionDenied("Only owners manage members.")
    forms_by_org = {org.pk: InviteMemberForm(organization=org) for org in organizations}
    status = 200
    if request.method == "POST":
        org = next(
            (o for o in organizations if str(o.pk) == request.POST.get("organization")), None
        )
        if org is None:
            raise Http404("Not found")
        form = InviteMemberForm(request.POST, organization=org)
        if form.is_valid():
            email = form.cleaned_data["email"]
            member_add(
                organization=org,
                email=email,
                password=get_random_string(32),
                role=form.cleaned_data["role"],
            )
            send_invitation(request, email=email, organization=org)
            messages.success(
                request,
                f"{email} is now a member of {org.name}. We emailed them a link to set their password.",
            )
            return redirect("backoffice:members")
        forms_by_org[org.pk] = form
        status = 400
    rows = [
        (
            org,
            forms_by_org[org.pk],
            Membership.objects.filter(organization=org)
            .select_related("user")
            .order_by("user__username"),
        )
        for org in organizations
    ]
    return render(
        request,
        "backoffice/members.html",
        {"rows": rows, "roles": Membership.Role.choices},
        status=status,
    )


@login_required
@require_POST
def member_change(request, pk: int):
    membership = get_object_or_404(Membership.objects.select_related("user", "organization"), pk=pk)
    require_role(request.user, membership.organization_id, owner=True)
    keeps_an_owner = membership.role != Membership.Role.OWNER or _other_owners(membership) > 0
    if request.POST.get("remove"):
        if not keeps_an_owner:
            messages.error(
                request, "An organization needs an owner: make someone else owner first."
            )
        else:
            membership.delete()
            messages.success(request, f"{membership.user.get_username()} is no longer a member.")
        return redirect("backoffice:members")
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, manager or viewer.")
    elif form.cleaned_data["role"] != Membership.Role.OWNER and not keeps_an_owner:
        messages.error(request, "An organization needs an owner: make someone else owner first.")
    else:
        member_add(
            organization=membership.organization,
            email=membership.user.username,
            password=None,
            role=form.cleaned_data["role"],
        )
        messages.success(
            request, f"{membership.user.get_username()} is now {form.cleaned_data['role']}."
        )
    return redirect("backoffice:members")


def search_q(text: str, *fields: str) -> Q:
    """Return a Q matching `text` (case-insensitive substring) in any of the fields."""
    q = Q()
    for field in fields:
        q |= Q(**{f"{field}__icontains": text})
    return q
