"""Portal shell: the dashboard, and the role checks every portal view goes through."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.views.decorators.http import require_POST
from django.views.generic import RedirectView

from .forms import EnergyReportingForm, InviteMemberForm, MemberRoleForm
from .middleware import VIEWER_ZONE_KEY
from .models import Membership, Organization, Property
from .providers import Provider
from .services import NEEDS_AN_OWNER, member_add, member_remove
from .tenancy import (
    location_zones,
    readable_organization_ids,
    require_owner_somewhere,
    require_role,
)


class DashboardFigures(Protocol):
    """A part of the dashboard: a dict merged into the template context."""

    def __call__(
        self,
        *,
        user: Any,
        organization_ids: list[int] | None,  # None: all (staff)
        today: datetime,
        since: datetime,
        now: datetime,
    ) -> dict[str, Any]: ...


class DashboardRevenue(Protocol):
    """Revenue booked in [since, until): [(currency, Decimal amount), ...]."""

    def __call__(
        self, *, organization_ids: list[int] | None, since: datetime, until: datetime
    ) -> list[tuple[str, Decimal]]: ...


# Higher apps fill the dashboard (this app may not import them): each part has one provider,
# registered in that app's AppConfig.ready().
charger_figures: Provider[DashboardFigures] = Provider("dashboard charger figures")  # chargers
security_figures: Provider[DashboardFigures] = Provider("dashboard security figures")  # chargers
support_figures: Provider[DashboardFigures] = Provider("dashboard support figures")  # support
reliability_figures: Provider[DashboardFigures] = Provider(
    "dashboard reliability figures"
)  # reliability
roaming_figures: Provider[DashboardFigures] = Provider("dashboard roaming figures")  # roaming
revenue: Provider[DashboardRevenue] = Provider("dashboard revenue")  # billing


logger = logging.getLogger(__name__)

INVITATION_NOT_SENT = (
    "{email} is now a member of {organization}, but the invitation email could not be sent (the "
    "mail server did not answer). Ask them to choose a password with \u201cForgot your "
    "password?\u201d on the sign-in page, or invite them again later."
)


class InvitationForm(PasswordResetForm):
    """Django's password reset form as the invitation. Its send_mail logs a failed send and goes
    on, which is right for a stranger's reset (the page must not tell whether the address has an
    account) but not for an owner's invitation: this one records it (`sent`)."""

    sent = True

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        try:
            EmailMultiAlternatives(subject, body, from_email, [to_email]).send()
        except Exception:  # SMTP refused, timed out, rejected: the owner is told
            logger.exception("The invitation email to user %s was not sent", context["user"].pk)
            self.sent = False


def send_invitation(request, *, email: str, organization: Organization) -> bool:
    """Email a new member the link to choose their password (the password-reset flow); False
    when the mail server did not take it."""
    invite = InvitationForm({"email": email})
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
    return invite.sent


def _currencies(organization_ids) -> list[str]:
    properties = Property.objects.all()
    if organization_ids is not None:
        properties = properties.filter(organization_id__in=organization_ids)
    return sorted(set(properties.values_list("currency", flat=True)))


@login_required
def dashboard(request):
    now = timezone.now()
    # "Today" and the chart's days are the viewer's (ViewerTimezoneMiddleware), as every time shown.
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    month_ago = today - timedelta(days=29)
    org_ids = readable_organization_ids(request.user)
    # No payment yet is 0.00 in the locations' currencies, not "–" beside a list of sessions.
    zero = [(currency, Decimal(0)) for currency in _currencies(org_ids)]
    context = {
        "has_memberships": org_ids is None or bool(org_ids),
        "revenue_today": revenue.call(organization_ids=org_ids, since=today, until=now) or zero,
        "revenue_30d": revenue.call(organization_ids=org_ids, since=month_ago, until=now) or zero,
        "zone_label": timezone.localtime(now).tzname(),
        "zone_name": timezone.get_current_timezone_name(),
        "zone_choices": [*location_zones(request.user), "UTC"],
        "zone_chosen": request.session.get(VIEWER_ZONE_KEY, ""),
    }
    for part in (
        charger_figures,
        security_figures,
        support_figures,
        reliability_figures,
        roaming_figures,
    ):
        context.update(
            part.call(
                user=request.user, organization_ids=org_ids, today=today, since=month_ago, now=now
            )
        )
    return render(request, "backoffice/dashboard.html", context)


@login_required
@require_POST
def time_zone_choice(request):
    """POST /time-zone/ zone=<one of the viewer's location zones, or UTC; empty: each location's
    own>: every time on the portal's pages is then shown in it (kept for the sign-in session)."""
    from django.utils.http import url_has_allowed_host_and_scheme

    zone = request.POST.get("zone", "")
    if zone and zone not in {*location_zones(request.user), "UTC"}:
        messages.error(request, "Choose one of the listed time zones.")
    elif zone:
        request.session[VIEWER_ZONE_KEY] = zone
        messages.success(request, f"Times are shown in {zone}.")
    else:
        request.session.pop(VIEWER_ZONE_KEY, None)
        messages.success(request, "Times are shown in each location's own zone.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("backoffice:dashboard")
    return redirect(back)


def _added(form: InviteMemberForm, organization: Organization) -> bool:
    try:
        member_add(
            organization=organization,
            email=form.cleaned_data["email"],
            password=get_random_string(32),
            role=form.cleaned_data["role"],
        )
    except ValidationError as exc:
        form.add_error(None, exc.messages[0])
        return False
    return True


@login_required
def members(request):
    """Owners: who is in the organization, with which role; invite, change role, remove."""
    organizations = require_owner_somewhere(request.user, "Only owners manage members.")
    forms_by_org = {org.pk: InviteMemberForm(organization=org) for org in organizations}
    status = 200
    if request.method == "POST":
        org = next(
            (o for o in organizations if str(o.pk) == request.POST.get("organization")), None
        )
        if org is None:
            raise Http404("Not found")
        form = InviteMemberForm(request.POST, organization=org)
        if form.is_valid() and _added(form, org):
            email = form.cleaned_data["email"]
            if send_invitation(request, email=email, organization=org):
                messages.success(
                    request,
                    f"{email} is now a member of {org.name}. We emailed them a link to set their password.",
                )
            else:
                messages.warning(
                    request, INVITATION_NOT_SENT.format(email=email, organization=org.name)
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
    if request.POST.get("remove"):
        try:
            member_remove(membership)
        except ValidationError:
            messages.error(request, NEEDS_AN_OWNER)
        else:
            messages.success(request, f"{membership.user.get_username()} is no longer a member.")
        return redirect("backoffice:members")
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, manager or viewer.")
        return redirect("backoffice:members")
    try:
        member_add(
            organization=membership.organization,
            email=membership.user.username,
            password=None,
            role=form.cleaned_data["role"],
        )
    except ValidationError:
        messages.error(request, NEEDS_AN_OWNER)
    else:
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


@login_required
@require_POST
def organization_energy_reporting(request, pk: int):
    """The organization's "Set chargers to report their energy meter" (Chargers page)."""
    organization = get_object_or_404(Organization, pk=pk)
    require_role(request.user, organization.pk, edit=True)
    form = EnergyReportingForm(request.POST, instance=organization)
    form.is_valid()  # a checkbox: absent is off, so every POST is valid
    form.save()
    state = "sets" if organization.configure_energy_reporting else "no longer sets"
    messages.success(request, f"{organization.name} {state} chargers to report their energy meter.")
    return redirect("chargers:charger-list")


class FaviconView(RedirectView):
    """/favicon.ico, which browsers ask for on pages without an icon link (the admin, the API's
    pages): the portal's icon (a 404 in every such page's console before)."""

    permanent = True

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str:
        return static("backoffice/icon.svg")
