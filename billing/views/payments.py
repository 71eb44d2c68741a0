"""HTTP doors of the payment flow: the processor's webhook, and the sandbox's stand-in for
api.stripe.com (confirm an intent from the browser, the 3-D Secure challenge page)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.tenancy import require_role

from .. import sandbox
from ..gateways import GatewayError, get_gateway
from ..models import SandboxAccount, SandboxIntent
from ..money import from_minor
from ..webhooks import WebhookRejected, receive

logger = logging.getLogger(__name__)


@csrf_exempt  # signed by the processor instead (Stripe-Signature)
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = receive(request.body, request.headers.get("Stripe-Signature", ""))
    except WebhookRejected as exc:
        logger.warning("Webhook refused: %s", exc)
        return HttpResponseBadRequest(str(exc))
    answer: dict[str, object] = {"received": True, "duplicate": event is None}
    if event is not None and event.error:
        answer["not_applied"] = event.error  # our words (webhooks.MalformedEvent), never a trace
    return JsonResponse(answer)


def _sandbox_only() -> None:
    if not getattr(get_gateway(), "sandbox", False):
        raise Http404("The sandbox gateway is not in use.")


# Stripe.js calls api.stripe.com with the publishable key and the intent's client secret, from
# the browser and without cookies; the sandbox endpoint is its stand-in, so no CSRF token either.
@csrf_exempt
@require_POST
def sandbox_confirm(request: HttpRequest, intent_id: str) -> HttpResponse:
    _sandbox_only()
    return_url = request.POST.get("return_url", "")
    if return_url and not url_has_allowed_host_and_scheme(
        return_url, allowed_hosts={request.get_host()}
    ):
        return JsonResponse(
            {"error": {"type": "invalid_request_error", "message": "Invalid return_url."}},
            status=400,
        )
    answer = sandbox.confirm(
        intent_id,
        payment_method=request.POST.get("payment_method", ""),
        client_secret=request.POST.get("client_secret", ""),
        return_url=return_url,
    )
    if "error" in answer:
        status = 402 if answer["error"].get("type") == "card_error" else 400
        return JsonResponse(answer, status=status)
    return JsonResponse(answer)


@csrf_exempt  # as sandbox_confirm: Stripe.js's confirmSetup stand-in, authorised by the client secret
@require_POST
def sandbox_setup_confirm(request: HttpRequest, setup_id: str) -> HttpResponse:
    _sandbox_only()
    answer = sandbox.setup_confirm(
        setup_id,
        payment_method=request.POST.get("payment_method", ""),
        client_secret=request.POST.get("client_secret", ""),
        expiry=sandbox.typed_expiry(request.POST.get("exp_month"), request.POST.get("exp_year")),
    )
    if "error" in answer:
        status = 402 if answer["error"].get("type") == "card_error" else 400
        return JsonResponse(answer, status=status)
    return JsonResponse(answer)


@require_http_methods(["GET", "POST"])
def sandbox_3ds(request: HttpRequest, intent_id: str) -> HttpResponse:
    """The sandbox's 3-D Secure page (the bank's page in real life): approve or fail."""
    _sandbox_only()
    row = SandboxIntent.objects.filter(pk=intent_id).first()
    if row is None:
        raise Http404("No such payment")
    if request.method == "GET":
        return render(
            request,
            "billing/sandbox_3ds.html",
            {"intent": row, "amount": from_minor(row.amount, row.currency)},
        )
    body = sandbox.authenticate(intent_id, approve=request.POST.get("outcome") == "approve")
    target = row.return_url or "/"
    separator = "&" if "?" in target else "?"
    query = urlencode(
        {
            "payment_intent": body["id"],
            "redirect_status": "succeeded" if body["status"] == "requires_capture" else "failed",
        }
    )
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return HttpResponse("Bad return_url", status=400)
    return redirect(f"{target}{separator}{query}")


# -- hosts' payout accounts (Connect onboarding) -------------------------------------------------


@login_required
@require_POST
def payout_account_start(request: HttpRequest, organization_id: int) -> HttpResponse:
    """Owners only: go to the processor's onboarding page for this organization's payout account."""
    from ..connect import payout_account_onboarding

    require_role(request.user, organization_id, owner=True)
    back = request.build_absolute_uri(
        reverse("billing:payout-account-return", args=[organization_id])
    )
    try:
        link = payout_account_onboarding(
            organization_id=organization_id,
            email=getattr(request.user, "email", ""),
            country="",
            return_url=back,
            refresh_url=back,
        )
    except GatewayError as exc:
        messages.error(request, f"The payment processor refused: {exc}")
        return redirect("billing:payout-list")
    return redirect(link)


@login_required
@require_GET
def payout_account_return(request: HttpRequest, organization_id: int) -> HttpResponse:
    from ..connect import payout_account_refresh

    require_role(request.user, organization_id, owner=True)
    try:
        row = payout_account_refresh(organization_id=organization_id)
    except GatewayError as exc:
        messages.error(request, f"Could not check the payout account: {exc}")
        return redirect("billing:payout-list")
    if row is not None and row.payout_account_ready:
        messages.success(request, "Your bank account is set up: payouts go to it.")
    else:
        messages.warning(
            request, "The payout account is not finished yet: open the setup again to complete it."
        )
    return redirect("billing:payout-list")


@require_http_methods(["GET", "POST"])
def sandbox_onboarding(request: HttpRequest, account: str) -> HttpResponse:
    """The sandbox's hosted onboarding (Stripe's page in real life): no real bank is involved."""
    _sandbox_only()
    row = SandboxAccount.objects.filter(pk=account).first()
    if row is None:
        raise Http404("No such account")
    return_url = request.GET.get("return_url", "") or request.POST.get("return_url", "")
    if not url_has_allowed_host_and_scheme(return_url, allowed_hosts={request.get_host()}):
        return HttpResponseBadRequest("Invalid return_url.")
    if request.method == "GET":
        return render(
            request, "billing/sandbox_onboarding.html", {"account": row, "return_url": return_url}
        )
    iban = "".join(request.POST.get("iban", "").split())
    if len(iban) < 8:
        return render(
            request,
            "billing/sandbox_onboarding.html",
            {"account": row, "return_url": return_url, "error": "Enter a test IBAN."},
            status=400,
        )
    sandbox.onboard(account, bank_last4=iban[-4:])
    return redirect(return_url)
