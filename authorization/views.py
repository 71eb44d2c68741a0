"""Portal pages: Tokens, local token groups, Authorization > Roaming and Mobility Providers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from backoffice.models import Organization
from backoffice.tenancy import (
    readable,
    readable_organization_ids,
    require_role,
    writable_organizations,
)

from .forms import (
    GROUP_EXISTS,
    TOKEN_EXISTS,
    AddTokenForm,
    RoamingSearchForm,
    TokenCreateForm,
    TokenEditForm,
    TokenGroupForm,
    token_state,
)
from .models import MobilityServiceProvider, Token, TokenGroup, normalize_uid
from .providers import contract_card, contract_ids
from .services import (
    MSP_TIMEOUT_RANGE,
    msp_set_blocked,
    msp_set_validation,
    token_group_add_uid,
    token_group_remove_token,
    token_group_touch,
    token_update,
    tokens_search,
)


def _tokens_for(user: Any) -> QuerySet[Token]:
    return readable(Token.objects.select_related("organization"), user).filter(
        organization__isnull=False
    )


def _groups_for(user: Any) -> QuerySet[TokenGroup]:
    return readable(TokenGroup.objects.select_related("organization"), user)


def _org_ids(user: Any) -> list[int]:
    ids = readable_organization_ids(user)
    return list(Organization.objects.values_list("pk", flat=True)) if ids is None else ids


# -- Tokens ---------------------------------------------------------------------------------------


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    organizations = writable_organizations(request.user)
    if request.method == "POST":
        if not organizations.exists():
            raise PermissionDenied("Your role is read-only.")
        form = TokenCreateForm(request.POST, user=request.user)
        if form.is_valid():
            require_role(request.user, form.cleaned_data["organization"].pk, edit=True)
            try:
                with transaction.atomic():
                    token = form.save()
                    for group in form.cleaned_data["groups"]:
                        token_group_add_uid(group=group, uid=token.uid)
            except IntegrityError:
                # The same card sent twice at once (a double click, two tabs): the other request
                # stored it; this one says so as the form's own check would have.
                form.add_error("uid", TOKEN_EXISTS)
            else:
                messages.success(request, f"Token {token.uid} added.")
                return redirect("authorization:token-list")
        status = 400
    else:
        form = TokenCreateForm(user=request.user, initial={"valid": True})
        status = 200
    q = request.GET.get("q", "").strip()
    tokens = (
        _tokens_for(request.user)
        .exclude(type=Token.Type.GUEST)
        .annotate(group_count=Count("groups"))
    )
    if q:
        found = Q(uid_normalized__contains=normalize_uid(q)) | Q(label__icontains=q)
        card_id = contract_card.call(q)  # one of our cards' contract id on other networks
        tokens = tokens.filter(found | Q(pk=card_id) if card_id is not None else found)
    page = Paginator(tokens.order_by("uid", "pk"), 50).get_page(request.GET.get("page"))
    contracts = contract_ids.call([(t.pk, t.organization_id) for t in page.object_list])
    rows = [(t, *token_state(t), contracts.get(t.pk, "")) for t in page.object_list]
    return render(
        request,
        "authorization/token_list.html",
        {
            "form": form,
            "rows": rows,
            "contracts": bool(contracts),
            "page": page,
            "q": q,
            "can_add": organizations.exists(),
            "groups": _groups_for(request.user).annotate(n=Count("tokens")),
        },
        status=status,
    )


@login_required
def token_edit(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(_tokens_for(request.user), pk=pk)
    membership = require_role(request.user, token.organization_id)
    if request.method == "POST":
        require_role(request.user, token.organization_id, edit=True)
        form = TokenEditForm(request.POST, instance=Token.objects.get(pk=token.pk))
        if form.is_valid():
            token_update(
                token=token, **{name: form.cleaned_data[name] for name in form.Meta.fields}
            )
            messages.success(request, f"Token {token.uid} saved.")
            return redirect("authorization:token-edit", token.pk)
        status = 400
    else:
        form = TokenEditForm(instance=token)
        status = 200
    label, badge = token_state(token)
    return render(
        request,
        "authorization/token_edit.html",
        {
            "token": token,
            "contract_id": contract_ids.call([(token.pk, token.organization_id)]).get(token.pk),
            "form": form,
            "can_edit": membership.can_write,
            "state": label,
            "badge": badge,
            "groups": token.groups.all(),
            "sessions": token.sessions.select_related("charger")[:10],
        },
        status=status,
    )


# -- Local token groups ------------------------------------------------------------------------------


@login_required
def token_group_list(request: HttpRequest) -> HttpResponse:
    organizations = writable_organizations(request.user)
    if request.method == "POST":
        if not organizations.exists():
            raise PermissionDenied("Your role is read-only.")
        form = TokenGroupForm(request.POST, user=request.user)
        if form.is_valid():
            require_role(request.user, form.cleaned_data["organization"].pk, edit=True)
            try:
                with transaction.atomic():
                    group = form.save()
            except IntegrityError:  # the same group sent twice at once: the other stored it
                form.add_error("name", GROUP_EXISTS)
            else:
                messages.success(request, f"Group “{group.name}” created. Add tokens to it below.")
                return redirect("authorization:token-group-detail", group.pk)
        status = 400
    else:
        form = TokenGroupForm(user=request.user)
        status = 200
    groups = _groups_for(request.user).annotate(
        n=Count("tokens", distinct=True), n_props=Count("restricted_properties", distinct=True)
    )
    return render(
        request,
        "authorization/token_group_list.html",
        {
            "groups": groups,
            "form": form,
            "can_add": organizations.exists(),
        },
        status=status,
    )


@login_required
def token_group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(_groups_for(request.user), pk=pk)
    membership = require_role(request.user, group.organization_id)
    add_form = AddTokenForm()
    status = 200
    if request.method == "POST":
        require_role(request.user, group.organization_id, edit=True)
        add_form = AddTokenForm(request.POST)
        if add_form.is_valid():
            token = token_group_add_uid(group=group, uid=add_form.cleaned_data["uid"])
            label, _ = token_state(token)
            note = (
                ""
                if label == "Valid"
                else f" Note: the token is {label.lower()}, so it is still refused."
            )
            messages.success(request, f"Token {token.uid} added to “{group.name}”.{note}")
            return redirect("authorization:token-group-detail", group.pk)
        status = 400
    tokens = [(t, *token_state(t)) for t in group.tokens.all().order_by("uid")]
    return render(
        request,
        "authorization/token_group_detail.html",
        {
            "group": group,
            "tokens": tokens,
            "add_form": add_form,
            "can_edit": membership.can_write,
            "properties": group.restricted_properties.all(),
            "chargers": group.chargers.all(),
        },
        status=status,
    )


@login_required
@require_POST
def token_group_remove(request: HttpRequest, pk: int, token_pk: int) -> HttpResponse:
    group = get_object_or_404(_groups_for(request.user), pk=pk)
    require_role(request.user, group.organization_id, edit=True)
    token = get_object_or_404(group.tokens.all(), pk=token_pk)
    token_group_remove_token(group=group, token=token)
    messages.success(request, f"Token {token.uid} removed from “{group.name}”.")
    return redirect("authorization:token-group-detail", group.pk)


# -- Authorization > Roaming -----------------------------------------------------------------------


@login_required
def roaming(request: HttpRequest) -> HttpResponse:
    form = RoamingSearchForm(request.GET or None)
    results = None
    if form.is_bound and form.is_valid():
        now = timezone.now()
        tokens = tokens_search(
            uid=form.cleaned_data["uid"], organization_ids=_org_ids(request.user)
        )
        results = [(t, *token_state(t, now)) for t in tokens]
    editable = set(writable_organizations(request.user).values_list("pk", flat=True))
    return render(
        request,
        "authorization/roaming.html",
        {"form": form, "results": results, "editable": editable},
    )


@login_required
@require_POST
def roaming_valid(request: HttpRequest, pk: int) -> HttpResponse:
    """Authorization › Roaming: tick or untick the "valid" box of one of the organization's own
    cards. A provider's (MSP's) card is the provider's to validate: not here."""
    token = get_object_or_404(
        readable(Token.objects.all(), request.user).filter(msp__isnull=True), pk=pk
    )
    require_role(request.user, token.organization_id, edit=True)
    token_update(token=token, valid=request.POST.get("valid") == "1")
    messages.success(
        request,
        f"{token.uid} is {'valid: it may charge' if token.valid else 'not valid: it is refused'}.",
    )
    uid = request.POST.get("uid", "").strip() or token.uid
    return redirect(f"{reverse('authorization:roaming')}?{urlencode({'uid': uid})}")


# -- Mobility Providers -----------------------------------------------------------------------------


def _msps_for(user: Any) -> QuerySet[MobilityServiceProvider]:
    return readable(MobilityServiceProvider.objects.select_related("organization"), user)


@login_required
def msp_list(request: HttpRequest) -> HttpResponse:
    msps = _msps_for(request.user).annotate(token_count=Count("tokens"))
    q = request.GET.get("q", "").strip()
    if q:
        msps = msps.filter(
            Q(name__icontains=q) | Q(party_id__icontains=q) | Q(country_code__iexact=q)
        )
    editable = set(writable_organizations(request.user).values_list("pk", flat=True))
    rows = [(m, m.organization_id in editable) for m in msps]
    return render(
        request,
        "authorization/msp_list.html",
        {
            "rows": rows,
            "q": q,
            "on_timeout_choices": MobilityServiceProvider.OnTimeout.choices,
        },
    )


@login_required
def msp_validation(request: HttpRequest, pk: int) -> HttpResponse:
    """Live validation of a provider's cards: how long to wait for its answer (15 s by default)
    and what a timeout means for the card. Anyone may read it; owners and managers change it."""
    from django.core.exceptions import ValidationError

    msp = get_object_or_404(_msps_for(request.user), pk=pk)
    membership = require_role(request.user, msp.organization_id)
    error = ""
    if request.method == "POST":
        require_role(request.user, msp.organization_id, edit=True)
        try:
            msp_set_validation(
                msp=msp,
                timeout_s=int(request.POST.get("timeout_s", "")),
                on_timeout=request.POST.get("on_timeout", ""),
            )
        except (ValueError, ValidationError) as exc:
            error = (
                "; ".join(sum(exc.message_dict.values(), []))
                if isinstance(exc, ValidationError)
                else "Enter a whole number of seconds."
            )
            msp.refresh_from_db()
        else:
            messages.success(
                request,
                f"{msp.name}: wait {msp.timeout_s} s, then {msp.get_on_timeout_display().lower()}.",
            )
            return redirect("authorization:msp-list")
    low, high = MSP_TIMEOUT_RANGE
    return render(
        request,
        "authorization/msp_validation.html",
        {
            "msp": msp,
            "error": error,
            "can_edit": membership.can_write,
            "on_timeout_choices": MobilityServiceProvider.OnTimeout.choices,
            "low": low,
            "high": high,
            "portal_section": "msps",
        },
        status=400 if error else 200,
    )


@login_required
@require_POST
def msp_block(request: HttpRequest, pk: int) -> HttpResponse:
    msp = get_object_or_404(_msps_for(request.user), pk=pk)
    require_role(request.user, msp.organization_id, edit=True)
    blocked = request.POST.get("blocked") == "1"
    msp_set_blocked(msp=msp, blocked=blocked)
    # Cached local lists carry these cards' status: bump the groups that hold them.
    token_group_touch(
        group_ids=list(
            TokenGroup.objects.filter(tokens__msp=msp).values_list("pk", flat=True).distinct()
        )
    )
    if blocked:
        messages.success(request, f"{msp.name} is blocked: its cards are refused at your chargers.")
    else:
        messages.success(request, f"{msp.name} is unblocked: its cards may charge again.")
    return redirect("authorization:msp-list")
