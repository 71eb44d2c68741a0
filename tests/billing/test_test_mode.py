"""With the sandbox gateway every payment page says "test mode"; with Stripe none does."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/driver/account/login/", "/driver/account/signup/"])
def test_driver_pages_say_test_mode_only_with_the_sandbox(client, settings, path):
    settings.PAYMENT_GATEWAY = "sandbox"
    page = client.get(path).content.decode()
    assert "data-test-mode" in page and "no real money moves" in page
    settings.PAYMENT_GATEWAY = "stripe"
    assert "data-test-mode" not in client.get(path).content.decode()


def test_driver_card_page_says_test_mode(client):
    from tests.drivers.conftest import sign_up

    sign_up(client, "d1@example.com")
    page = client.get("/driver/cards/add/").content.decode()
    assert "data-test-mode" in page
