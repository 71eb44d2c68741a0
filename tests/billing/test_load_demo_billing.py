"""The demo billing loader is idempotent and prices the demo property."""

import pytest
from django.core.management import CommandError, call_command

from billing.models import BillingSettings, Rate, SubscriptionPlan

pytestmark = pytest.mark.django_db


def test_load_demo_billing_twice_changes_nothing():
    with pytest.raises(CommandError):
        call_command("load_demo_billing")
    call_command("load_demo")
    call_command("load_demo_billing")
    counts = (
        Rate.objects.count(),
        BillingSettings.objects.count(),
        SubscriptionPlan.objects.count(),
    )
    call_command("load_demo_billing")
    assert (
        Rate.objects.count(),
        BillingSettings.objects.count(),
        SubscriptionPlan.objects.count(),
    ) == counts
    assert (
        counts[0] == 2
        and Rate.objects.filter(charger__isnull=True, property__name="Harbour View Garage").exists()
    )
