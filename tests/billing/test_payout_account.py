"""A host connects a bank account for payouts through the processor's hosted onboarding
(sandbox here): owners only, one account per organization, readiness from the processor."""

import pytest

from billing.models import BillingSettings, SandboxAccount, WebhookEvent
from tests.factories import MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


def test_owner_sets_up_the_payout_account_through_hosted_onboarding(client, host, prop):
    client.force_login(host)
    org = prop.organization_id
    page = client.get("/billing/payouts/").content.decode()
    assert "No bank account" in page and f'action="/billing/payout-account/{org}/"' in page
    response = client.post(f"/billing/payout-account/{org}/")
    assert response.status_code == 302 and response["Location"].startswith(
        "/billing/sandbox/onboarding/acct_sbx_"
    )
    again = client.post(f"/billing/payout-account/{org}/")  # a double click: the same account
    assert again["Location"] == response["Location"] and SandboxAccount.objects.count() == 1
    onboarding = client.get(response["Location"])
    assert "Sandbox onboarding" in onboarding.content.decode()
    back = client.post(response["Location"], {"iban": "DE89 3704 0044 0532 0130 00"})
    assert back["Location"] == f"http://testserver/billing/payout-account/{org}/return/"
    assert WebhookEvent.objects.filter(type="account.updated").exists()  # signed, verified, applied
    assert BillingSettings.objects.get(organization_id=org).payout_account_ready
    client.get(back["Location"])
    assert "Ready for payouts" in client.get("/billing/payouts/").content.decode()


def test_return_reads_readiness_from_the_processor_not_the_browser(client, host, prop):
    client.force_login(host)
    org = prop.organization_id
    client.post(f"/billing/payout-account/{org}/")
    client.get(f"/billing/payout-account/{org}/return/")  # came back without finishing
    row = BillingSettings.objects.get(organization_id=org)
    assert row.payout_account_id and not row.payout_account_ready


def test_only_owners_of_that_organization(client, prop):
    other = PropertyFactory()
    manager = MembershipFactory(organization=prop.organization, role="manager").user
    owner_elsewhere = MembershipFactory(organization=other.organization, role="owner").user
    client.force_login(manager)
    assert client.post(f"/billing/payout-account/{prop.organization_id}/").status_code in (403, 404)
    client.force_login(owner_elsewhere)
    assert client.post(f"/billing/payout-account/{prop.organization_id}/").status_code in (403, 404)
    assert not SandboxAccount.objects.exists()
