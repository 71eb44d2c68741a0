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
