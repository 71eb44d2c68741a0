"""A location's monthly plans in the portal: owners and managers offer one and stop offering
one (support alone could, in the admin); drivers see only the plans on offer; another
organization's location or plan is a 404 and changes nothing."""

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Subscription, SubscriptionPlan
from tests.factories import MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

PLAN = {
    "name": "Resident monthly",
    "monthly_fee": "25.00",
    "included_kwh": "50",
    "energy_discount_percent": "10",
}


def member(prop, role="manager") -> Client:
    client = Client()
    client.force_login(MembershipFactory(organization=prop.organization, role=role).user)
    return client


def test_a_manager_offers_a_plan_and_stops_offering_it():
    prop = PropertyFactory(currency="EUR")
    web = member(prop)
    url = f"/billing/properties/{prop.pk}/plans/"
    empty = web.post(url, {**PLAN, "included_kwh": "0", "energy_discount_percent": "0"})
    assert empty.status_code == 400 and "A plan gives something" in empty.content.decode()
    over = web.post(url, {**PLAN, "energy_discount_percent": "120"})
    assert over.status_code == 400 and not SubscriptionPlan.objects.exists()
    assert web.post(url, PLAN).status_code == 302
    plan = SubscriptionPlan.objects.get()
    assert (plan.monthly_fee, plan.included_kwh, plan.energy_discount_percent) == (
        Decimal("25.00"),
        Decimal("50"),
        Decimal("10"),
    )
    page = web.get(url).content.decode()
    assert "Resident monthly" in page and "EUR 25.00" in page and "Stop offering" in page
    assert f'href="{url}"' in web.get("/billing/prices/").content.decode()
    assert web.post(f"/billing/plans/{plan.pk}/stop/").status_code == 302
    plan.refresh_from_db()
    assert not plan.active and "No longer" in web.get(url).content.decode()


def test_plans_of_another_organization_are_neither_read_nor_changed_and_viewers_only_read():
    mine, theirs = PropertyFactory(), PropertyFactory()
    their_plan = SubscriptionPlan.objects.create(
        property=theirs, name="Theirs", monthly_fee=Decimal("9"), included_kwh=Decimal("5")
    )
    web = member(mine)
    assert web.get(f"/billing/properties/{theirs.pk}/plans/").status_code == 404
    assert web.post(f"/billing/properties/{theirs.pk}/plans/", PLAN).status_code == 404
    assert web.post(f"/billing/plans/{their_plan.pk}/stop/").status_code == 404
    assert SubscriptionPlan.objects.get(pk=their_plan.pk).active
    assert SubscriptionPlan.objects.count() == 1
    viewer = member(mine, role="viewer")
    assert (
        "Offer a plan" not in viewer.get(f"/billing/properties/{mine.pk}/plans/").content.decode()
    )
    assert viewer.post(f"/billing/properties/{mine.pk}/plans/", PLAN).status_code == 403
    assert SubscriptionPlan.objects.count() == 1


def test_a_stopped_plan_keeps_its_subscribers_and_counts_them():
    prop = PropertyFactory()
    plan = SubscriptionPlan.objects.create(
        property=prop, name="Old", monthly_fee=Decimal("20"), included_kwh=Decimal("30")
    )
    Subscription.objects.create(plan=plan, email="a@example.org", started_at=timezone.now())
    web = member(prop)
    stopped = web.post(f"/billing/plans/{plan.pk}/stop/", follow=True).content.decode()
    assert "its 1 subscriber(s) keep it until they cancel" in stopped
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
