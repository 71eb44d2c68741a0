"""Support sees failed and retrying plan fees in Django admin, and finds drivers by card last 4."""

import pytest

from billing.models import SandboxPaymentMethod, Subscription
from billing.services import subscriptions_collect
from tests.drivers.conftest import save_card, sign_up
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_refused_monthly_fee_is_listed_with_its_reason_in_admin(client, plan):
    sign_up(client, "admin.view@example.com")
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    subscription = Subscription.objects.get()
    SandboxPaymentMethod.objects.update(test_method="pm_card_chargeDeclinedInsufficientFunds")
    subscriptions_collect(now=subscription.paid_until)
    agent = UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)
    client.force_login(agent)
    page = client.get("/admin/billing/subscriptioninvoice/?status__exact=retrying").content.decode()
    assert "insufficient funds" in page and "admin.view@example.com" in page
    assert (
        "insufficient funds"
        in client.get(f"/admin/billing/subscription/{subscription.pk}/change/").content.decode()
    )
    found = client.get("/admin/drivers/driverprofile/?q=4242").content.decode()
    assert "1 result" in found or "1 driver profile" in found
