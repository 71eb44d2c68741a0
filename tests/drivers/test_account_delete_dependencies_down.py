"""Deleting a driver account while the mail server or the payment processor fails: the driver
reads what happened (deleted, or nothing deleted and why), never a server error."""

import pytest
from django.contrib.auth import get_user_model

from billing.gateways import PROCESSOR_FAILED, GatewayError
from drivers.models import DriverProfile
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_mail_down import LOCMEM

pytestmark = pytest.mark.django_db

EMAIL, PASSWORD = "leaving@example.com", "long-pass-9182"


def test_the_account_is_deleted_and_said_so_while_mail_is_down(client, settings):
    sign_up(client, EMAIL, PASSWORD)
    save_card(client)
    settings.EMAIL_BACKEND = "tests.drivers.test_mail_down.MailDown"
    client.raise_request_exception = False
    response = client.post("/driver/delete/", {"password": PASSWORD})
    # Before: the goodbye email's SMTP error came after the deletion: a 500 page, so the driver
    # could not tell that the account was gone.
    assert response.status_code == 200
    assert not get_user_model().objects.filter(email=EMAIL).exists()


class CustomerDeleteDown:
    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def customer_delete(self, customer):
        raise GatewayError(PROCESSOR_FAILED)


def test_nothing_is_deleted_and_the_driver_is_told_while_the_processor_fails(
    client, settings, monkeypatch
):
    settings.EMAIL_BACKEND = LOCMEM
    sign_up(client, EMAIL, PASSWORD)
    save_card(client)
    from drivers import services

    real = services.get_gateway()
    monkeypatch.setattr(services, "get_gateway", lambda: CustomerDeleteDown(real))
    client.raise_request_exception = False
    response = client.post("/driver/delete/", {"password": PASSWORD})
    # Before: a 500 page after the driver was signed out, the account still there.
    assert response.status_code == 503
    page = response.content.decode()
    assert "not deleted" in page and PROCESSOR_FAILED in page
    assert DriverProfile.objects.filter(user__email=EMAIL).exists()


def test_an_agents_delete_while_stripe_fails_is_told_erases_nothing_and_can_be_done_again(
    client, settings, monkeypatch
):
    import stripe
    from django.test import Client

    from billing.gateways import StripeGateway
    from drivers import services
    from drivers.models import SavedCard
    from tests.drivers.test_stripe_saved_cards import Recorded
    from tests.factories import UserFactory

    settings.EMAIL_BACKEND = LOCMEM
    sign_up(client, EMAIL, PASSWORD)
    save_card(client)
    user = get_user_model().objects.get(email=EMAIL)
    agent = Client()
    agent.force_login(UserFactory(is_staff=True, is_superuser=True))
    agent.raise_request_exception = False
    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    http = Recorded([("pm_detached", 200), *[("api_error", 500)] * 3])  # + the client's retries
    monkeypatch.setattr(
        services, "get_gateway", lambda: StripeGateway("sk_test_recorded", http_client=http)
    )
    url = f"/admin/auth/user/{user.pk}/delete/"

    response = agent.post(url, {"post": "yes"}, follow=True)
    # Before: GatewayError escaped the admin's delete view: a 500 page.
    assert response.status_code == 200 and response.redirect_chain[-1][0] == url
    said = [str(m) for m in response.context["messages"]]
    assert any("was not deleted" in m and PROCESSOR_FAILED in m for m in said), said
    assert http.requests[-1]["method"] == "delete" and not http.replies
    assert DriverProfile.objects.filter(user=user).exists() and SavedCard.objects.exists()
    assert get_user_model().objects.get(pk=user.pk).email == EMAIL

    # Stripe answers again: the same deletion goes through.
    http.replies = [("pm_detached", 200), ("customer_deleted", 200)]
    done = agent.post(url, {"post": "yes"}, follow=True)
    assert any("deleted as the driver's own deletion" in str(m) for m in done.context["messages"])
    assert not get_user_model().objects.filter(pk=user.pk).exists()
