"""Repeated failed sign-ins are refused with 429 on the portal, the admin and the token endpoint.

The outside test that found the hole: 40 wrong passwords, then the right one, signed in.
Policy (docs/security.md): LOGIN_FAILURE_LIMIT failures per (lower-cased login, client IP)
lock that pair for LOGIN_COOLOFF_MINUTES; LOGIN_IP_FAILURE_LIMIT failures from one IP over
any logins lock the IP. A lock does not follow the account to another IP.
"""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from backoffice.models import Organization
from backoffice.services import member_add
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

EMAIL = "host@example.com"
PASSWORD = "host-pass-123456"
LOCKED = "Too many failed sign-in attempts. Try again in 15 minutes."


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def member(db):
    return member_add(
        organization=Organization.objects.create(name="O"),
        email=EMAIL,
        password=PASSWORD,
        role="owner",
    )


@pytest.fixture
def staff(db):
    return UserFactory(
        username="agent@example.com", password=PASSWORD, is_staff=True, is_superuser=True
    )


def portal_login(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def admin_login(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def token_login(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=ip,
    )


def test_defaults_match_the_documented_policy():
    assert (
        settings.LOGIN_FAILURE_LIMIT,
        settings.LOGIN_IP_FAILURE_LIMIT,
        settings.LOGIN_COOLOFF_MINUTES,
    ) == (10, 50, 15)


@pytest.mark.parametrize("attempts", [40])
def test_the_measured_attack_no_longer_signs_in(client, member, attempts):
    """40 wrong passwords, then the right one: refused now (the 11th attempt already was)."""
    for _ in range(attempts):
        portal_login(client, EMAIL, "wrong-password")
    response = portal_login(client, EMAIL, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_portal_locks_after_the_limit_even_with_the_right_password(client, member):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert portal_login(client, EMAIL, "wrong-password").status_code == 200
    last_failure = portal_login(client, EMAIL, "wrong-password")
    assert last_failure.status_code == 429
    response = portal_login(client, EMAIL, PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert response["Retry-After"] == str(15 * 60)
    assert "_auth_user_id" not in client.session


def test_one_wrong_password_short_of_the_limit_still_signs_in(client, member):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        portal_login(client, EMAIL, "wrong-password")
    assert portal_login(client, EMAIL, PASSWORD).status_code == 302


def test_admin_login_locks_after_the_limit(client, staff):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        admin_login(client, "agent@example.com", "wrong-password")
    response = admin_login(client, "agent@example.com", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_token_endpoint_locks_after_the_limit_with_a_json_answer(member):
    api = APIClient()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert token_login(api, EMAIL, "wrong-password").status_code == 400
    assert token_login(api, EMAIL, "wrong-password").status_code == 429
    response = token_login(api, EMAIL, PASSWORD)
    assert response.status_code == 429
    assert response.json() == {"detail": LOCKED}
    assert response["Retry-After"] == str(15 * 60)


def test_the_login_counts_in_any_case_and_with_spaces(client, member):
    """Host@Example.com and host@example.com are one account, so they share one counter."""
    variants = ["Host@Example.com", "HOST@EXAMPLE.COM", " host@example.com ", "host@Example.com"]
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        portal_login(client, variants[n % len(variants)], "wrong-password")
    assert portal_login(client, EMAIL, PASSWORD).status_code == 429


def test_failures_on_portal_and_token_endpoint_add_up(client, member):
    api = APIClient()
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        if n % 2:
            portal_login(client, EMAIL, "wrong-password")
        else:
            token_login(api, EMAIL, "wrong-password")
    assert token_login(api, EMAIL, PASSWORD).status_code == 429


def test_a_lock_does_not_follow_the_account_to_another_address(client, member):
    """Someone guessing from their own address cannot keep the host out from everywhere."""
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        portal_login(client, EMAIL, "wrong-password", ip="203.0.113.9")
    assert portal_login(client, EMAIL, PASSWORD, ip="203.0.113.9").status_code == 429
    assert portal_login(client, EMAIL, PASSWORD, ip="198.51.100.7").status_code == 302


def test_spoofed_forwarded_for_does_not_escape_the_lock(client, member):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": EMAIL, "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    response = client.post(
        "/accounts/login/",
        {"username": EMAIL, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.200",
    )
    assert response.status_code == 429


def test_sign_in_works_again_after_the_cool_off(client, member):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(settings.LOGIN_FAILURE_LIMIT):
            portal_login(client, EMAIL, "wrong-password")
        clock.shift(timedelta(minutes=14))
        assert portal_login(client, EMAIL, PASSWORD).status_code == 429
        # That refused attempt counted as a failure and started the cool-off again.
        clock.shift(timedelta(minutes=15, seconds=1))
        assert portal_login(client, EMAIL, PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_the_count(client, member):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        portal_login(client, EMAIL, "wrong-password")
    assert portal_login(client, EMAIL, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        portal_login(client, EMAIL, "wrong-password")
    assert portal_login(client, EMAIL, PASSWORD).status_code == 302


def test_one_address_spraying_many_logins_is_locked_too(client, member, settings):
    settings.LOGIN_IP_FAILURE_LIMIT = 6
    for n in range(6):  # one try each for six other logins: under the per-login limit
        portal_login(client, f"guess{n}@example.com", "wrong-password", ip="203.0.113.9")
    # The real host signing in from that address now waits too; from elsewhere, no.
    assert portal_login(client, EMAIL, PASSWORD, ip="203.0.113.9").status_code == 429
    assert portal_login(client, EMAIL, PASSWORD, ip="198.51.100.7").status_code == 302


@pytest.mark.django_db(transaction=True)
async def test_token_endpoint_is_locked_under_asgi(async_client):
    """Production serves Django over ASGI, where axes runs its async middleware path."""
    from asgiref.sync import sync_to_async

    await sync_to_async(member_add)(
        organization=await Organization.objects.acreate(name="O"),
        email=EMAIL,
        password=PASSWORD,
        role="owner",
    )
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        await async_client.post(
            "/api/v1/auth/token/",
            {"username": EMAIL, "password": "wrong"},
            content_type="application/json",
        )
    response = await async_client.post(
        "/api/v1/auth/token/",
        {"username": EMAIL, "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 429
    assert response.json() == {"detail": LOCKED}
