"""Agent actions in the admin do what the driver's self-service does and say so (issue 34 item 4):
cancel a plan, delete an account, remove a saved card."""

from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from backoffice.formatting import date_text
from billing.models import SandboxPaymentMethod, Subscription, SubscriptionPlan
from drivers.models import DriverProfile, SavedCard
from tests.drivers.conftest import save_card, sign_up
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    desk = Client()
    desk.force_login(UserFactory(username="agent@example.com", is_staff=True, is_superuser=True))
    return desk


def _subscribed(client, prop, email="sub@example.com"):
    plan = SubscriptionPlan.objects.create(
        property=prop, name="Resident", monthly_fee=Decimal("25.00"), included_kwh=Decimal("100")
    )
    sign_up(client, email)
    save_card(client)
    client.post(f"/driver/plans/{plan.pk}/subscribe/")
    return Subscription.objects.get(email=email)


def test_admin_cancel_sets_the_dates_the_drivers_own_cancel_sets_and_says_so(client, prop, agent):
    subscription = _subscribed(client, prop)
    url = "/admin/billing/subscription/"
    # The status cannot be set to Cancelled by hand (that left the dates empty).
    page = agent.get(f"{url}{subscription.pk}/change/").content.decode()
    assert 'name="status"' not in page and 'name="cancelled_at"' not in page
    confirm = agent.post(
        url, {"action": "cancel_subscriptions", ACTION_CHECKBOX_NAME: [subscription.pk]}
    ).content.decode()
    assert "exactly what the driver's own <em>Cancel</em> button does" in confirm
    assert f"<td>{subscription.paid_until:%Y-%m-%d}</td>" in confirm  # lasts until, shown first
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    before = timezone.now()
    agent.post(
        url,
        {
            "action": "cancel_subscriptions",
            ACTION_CHECKBOX_NAME: [subscription.pk],
            "apply": "1",
        },
    )
    subscription.refresh_from_db()
    assert subscription.status == "cancelled"
    assert before <= subscription.cancelled_at <= timezone.now()
    assert (
        subscription.ends_at == subscription.paid_until
    )  # as drivers.services.subscription_cancel
    page = client.get("/driver/subscriptions/").content.decode()
    # Dates as every page writes them, in the plan's location zone (backoffice.formatting).
    zone = ZoneInfo(prop.timezone)
    assert (
        f"Cancelled on {date_text(subscription.cancelled_at, zone)}; the plan lasts until "
        f"<strong>{date_text(subscription.ends_at, zone)}</strong>." in page
    )


def test_a_cancelled_plan_without_dates_never_shows_empty_dates(client, prop):
    subscription = _subscribed(client, prop)
    Subscription.objects.filter(pk=subscription.pk).update(
        status="cancelled", cancelled_at=None, ends_at=None
    )  # a row from before the action existed
    for path in ("/driver/subscriptions/", "/driver/"):
        page = client.get(path).content.decode()
        assert "Cancelled on ;" not in page and "lasts until ." not in page
        assert "until <strong></strong>" not in page and "lasts until <" not in page


def test_admin_delete_of_a_driver_lists_the_plan_and_detaches_cards_like_self_service(
    client, prop, agent, django_capture_on_commit_callbacks
):
    subscription = _subscribed(client, prop, email="leaver@example.com")
    user = get_user_model().objects.get(email="leaver@example.com")
    card = SavedCard.objects.get()
    page = agent.get(f"/admin/auth/user/{user.pk}/delete/").content.decode()
    assert "<strong>Resident</strong> at" in page and "25.00" in page
    assert f"Saved card {card} <strong>detached at the payment processor</strong>" in page
    assert SandboxPaymentMethod.objects.filter(pk=card.reference).exists()  # nothing yet
    # No bulk delete that would skip all this.
    changelist = agent.get("/admin/auth/user/").content.decode()
    assert 'value="delete_selected"' not in changelist
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = agent.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"}, follow=True)
    assert done.status_code == 200
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert not DriverProfile.objects.exists()
    assert not SandboxPaymentMethod.objects.filter(pk=card.reference).exists()  # detached
    subscription.refresh_from_db()
    assert subscription.status == "cancelled" and subscription.ends_at and not subscription.email
    assert [m.to for m in mail.outbox] == [["leaver@example.com"]]  # the driver's confirmation


def test_admin_delete_of_a_non_driver_is_the_plain_admin_delete(agent):
    host = UserFactory(username="host@example.com")
    page = agent.get(f"/admin/auth/user/{host.pk}/delete/").content.decode()
    assert "driver-delete" not in page
    agent.post(f"/admin/auth/user/{host.pk}/delete/", {"post": "yes"})
    assert not get_user_model().objects.filter(pk=host.pk).exists()


def test_admin_removes_a_saved_card_by_detaching_it_at_the_processor(client, prop, agent):
    subscription = _subscribed(client, prop)
    only = SavedCard.objects.get()
    profile = only.profile
    remove = f"/admin/drivers/driverprofile/{profile.pk}/cards/{only.pk}/remove/"
    assert (
        remove in agent.get(f"/admin/drivers/driverprofile/{profile.pk}/change/").content.decode()
    )
    page = agent.get(remove).content.decode()
    assert "<strong>detached at the\npayment processor</strong>" in page
    # The only card of an active plan stays, as in self-service.
    refused = agent.post(remove, follow=True).content.decode()
    assert "This card pays your subscription" in refused
    assert SavedCard.objects.filter(pk=only.pk).exists()
    save_card(client)
    second = SavedCard.objects.exclude(pk=only.pk).get()
    agent.post(remove, follow=True)
    assert not SavedCard.objects.filter(pk=only.pk).exists()
    assert not SandboxPaymentMethod.objects.filter(pk=only.reference).exists()
    second.refresh_from_db()
    subscription.refresh_from_db()
    assert second.is_default and subscription.payment_method_ref == second.reference


def test_drivers_are_listed_and_found_by_email(agent, client):
    sign_up(client, "findme@example.com")
    page = agent.get("/admin/drivers/driverprofile/?q=findme").content.decode()
    assert "findme@example.com" in page
    assert (
        agent.get("/admin/drivers/driverprofile/?q=nobody")
        .content.decode()
        .count("findme@example.com")
        == 0
    )
