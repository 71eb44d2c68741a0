"""Stripe answers 5xx while a host sets up or returns from the payout account's onboarding: the
host reads our sentence on the payouts page, never a server error, and nothing is half-recorded."""

import pytest
from django.contrib.messages import get_messages

from billing.gateways import PROCESSOR_FAILED, StripeGateway
from billing.models import BillingSettings
from tests.billing.test_stripe_gateway import RecordedHTTP

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_down(monkeypatch):
    http = RecordedHTTP([("api_error", 500)] * 9)  # the client's own retries get it too
    gateway = StripeGateway("sk_test_recorded", http_client=http)
    monkeypatch.setattr("billing.connect.get_gateway", lambda: gateway)
    return http


def _said(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_setting_up_the_payout_account_while_stripe_fails_says_so(client, host, prop, stripe_down):
    client.force_login(host)
    client.raise_request_exception = False
    org = prop.organization_id
    response = client.post(f"/billing/payout-account/{org}/")
    # Before: stripe.APIError escaped the view (only GatewayError was caught): a 500 page.
    assert response.status_code == 302 and response["Location"] == "/billing/payouts/"
    assert any(PROCESSOR_FAILED in m for m in _said(response))
    assert stripe_down.requests  # it did ask Stripe
    assert not BillingSettings.objects.filter(organization_id=org).exclude(payout_account_id="")


def test_returning_from_onboarding_while_stripe_fails_says_so(client, host, prop, stripe_down):
    client.force_login(host)
    client.raise_request_exception = False
    org = prop.organization_id
    BillingSettings.objects.create(organization_id=org, payout_account_id="acct_1QxTest")
    response = client.get(f"/billing/payout-account/{org}/return/")
    # Before: connect_account_ready's GatewayError was not caught there: a 500 page.
    assert response.status_code == 302 and response["Location"] == "/billing/payouts/"
    assert any(PROCESSOR_FAILED in m for m in _said(response))
    assert not BillingSettings.objects.get(organization_id=org).payout_account_ready
