"""Guessing a driver's password is throttled (allauth's login_failed rate limit, per address)."""

import pytest

from tests.drivers.conftest import sign_up

pytestmark = pytest.mark.django_db


def test_repeated_wrong_passwords_lock_the_address_even_for_the_right_one(client):
    sign_up(client, "guessed@example.com")
    client.logout()
    for _ in range(6):
        response = client.post(
            "/driver/account/login/", {"login": "guessed@example.com", "password": "wrong-guess"}
        )
        assert "_auth_user_id" not in client.session
    response = client.post(
        "/driver/account/login/", {"login": "guessed@example.com", "password": "long-pass-9182"}
    )
    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 429)


def test_a_few_mistakes_do_not_lock(client):
    sign_up(client, "typo@example.com")
    client.logout()
    client.post("/driver/account/login/", {"login": "typo@example.com", "password": "wrong-guess"})
    client.post(
        "/driver/account/login/", {"login": "typo@example.com", "password": "long-pass-9182"}
    )
    assert "_auth_user_id" in client.session
