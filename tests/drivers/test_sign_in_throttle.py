"""Guessing a driver's password is throttled by the same policy as every other sign-in
(docs/security.md, "Sign-in throttling"): LOGIN_FAILURE_LIMIT failures per (address, client IP)
lock that pair with a 429 for LOGIN_COOLOFF_MINUTES, the right password included."""

import pytest
from django.conf import settings

from tests.drivers.conftest import sign_up

pytestmark = pytest.mark.django_db

PASSWORD = "long-pass-9182"
LOCKED = "Too many failed sign-in attempts. Try again in 15 minutes."


def driver_login(client, login, password, ip="10.0.0.1"):
    return client.post(
        "/driver/account/login/", {"login": login, "password": password}, REMOTE_ADDR=ip
    )


@pytest.fixture
def driver(client):
    sign_up(client, "guessed@example.com")
    client.logout()
    return "guessed@example.com"


def test_the_driver_sign_in_locks_at_the_limit_of_every_sign_in(client, driver):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert driver_login(client, driver, "wrong-guess").status_code == 200
    assert driver_login(client, driver, "wrong-guess").status_code == 429
    response = driver_login(client, driver, PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert response["Retry-After"] == str(15 * 60)
    assert "_auth_user_id" not in client.session


def test_one_wrong_password_short_of_the_limit_still_signs_in(client, driver):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        driver_login(client, driver, "wrong-guess")
    assert driver_login(client, driver, PASSWORD).status_code == 302
    assert "_auth_user_id" in client.session


def test_the_address_counts_in_any_case_and_the_lock_stays_with_the_client(client, driver):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        driver_login(client, driver.upper() if n % 2 else f" {driver} ", "wrong-guess")
    assert driver_login(client, driver, PASSWORD).status_code == 429
    # Someone guessing from their own address does not lock the driver out of theirs.
    assert driver_login(client, driver, PASSWORD, ip="10.0.0.2").status_code == 302


def test_the_measured_attack_no_longer_signs_in(client, driver):
    """30 wrong passwords then the right one signed in before; the 10th already locks now."""
    for _ in range(30):
        driver_login(client, driver, "wrong-guess")
    assert driver_login(client, driver, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
