"""Throttles beside sign-in (issue 33 item 11, docs/security.md "Throttles"): guessing OCPI
credentials tokens, and mails a stranger can make us send (password reset, email change), per
address and per client IP."""

import pytest
from django.conf import settings
from django.core import mail

from backoffice.models import Organization
from backoffice.services import member_add
from tests.drivers.conftest import sign_up
from tests.roaming.conftest import auth, connected_partner

pytestmark = pytest.mark.django_db

CREDENTIALS = "/ocpi/2.2.1/credentials"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_guessing_ocpi_tokens_from_one_client_is_refused_with_429(client):
    partner = connected_partner(Organization.objects.create(name="CPO"))
    assert partner.state == "connected"
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        answer = client.get(
            CREDENTIALS, HTTP_AUTHORIZATION=auth(f"guess-{n}"), REMOTE_ADDR="10.9.0.1"
        )
        assert answer.status_code == 401
    refused = client.get(CREDENTIALS, HTTP_AUTHORIZATION=auth("guess-x"), REMOTE_ADDR="10.9.0.1")
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(settings.LOGIN_COOLOFF_MINUTES * 60)
    assert "Too many unknown credentials tokens" in refused.json()["status_message"]
    # Even a right token is not looked at from that client during the pause...
    assert (
        client.get(CREDENTIALS, HTTP_AUTHORIZATION=auth(), REMOTE_ADDR="10.9.0.1").status_code
        == 429
    )
    # ...while the partner itself, calling from its own address, is served.
    assert (
        client.get(CREDENTIALS, HTTP_AUTHORIZATION=auth(), REMOTE_ADDR="10.9.0.2").status_code
        == 200
    )


def test_a_partner_with_the_right_token_is_never_throttled(client):
    connected_partner(Organization.objects.create(name="CPO"))
    for _ in range(settings.LOGIN_FAILURE_LIMIT + 5):
        assert client.get(CREDENTIALS, HTTP_AUTHORIZATION=auth()).status_code == 200


def test_portal_password_reset_mails_are_limited_per_address(client):
    member_add(
        organization=Organization.objects.create(name="O"),
        email="host@example.com",
        password="host-pass-123456",
        role="owner",
    )
    mail.outbox.clear()
    for _ in range(settings.MAIL_ADDRESS_LIMIT):
        answer = client.post("/accounts/password-reset/", {"email": "host@example.com"})
        assert answer.status_code == 302
    assert len(mail.outbox) == settings.MAIL_ADDRESS_LIMIT
    refused = client.post("/accounts/password-reset/", {"email": "Host@Example.com"})
    assert refused.status_code == 429 and refused["Retry-After"] == "3600"
    assert "Too many password reset emails" in refused.content.decode()
    assert len(mail.outbox) == settings.MAIL_ADDRESS_LIMIT  # no mail sent


def test_portal_password_reset_is_limited_per_client_over_any_addresses(client, settings):
    settings.MAIL_CLIENT_LIMIT = 4
    for n in range(4):
        assert (
            client.post("/accounts/password-reset/", {"email": f"x{n}@example.com"}).status_code
            == 302
        )
    assert client.post("/accounts/password-reset/", {"email": "y@example.com"}).status_code == 429
    other = client.post(
        "/accounts/password-reset/", {"email": "y@example.com"}, REMOTE_ADDR="10.0.0.9"
    )
    assert other.status_code == 302


def test_driver_password_reset_mails_are_limited_per_address(client):
    sign_up(client, "driver@example.com")
    client.logout()
    mail.outbox.clear()
    for _ in range(settings.MAIL_ADDRESS_LIMIT):
        client.post("/driver/account/password/reset/", {"email": "driver@example.com"})
    assert len(mail.outbox) == settings.MAIL_ADDRESS_LIMIT
    refused = client.post("/driver/account/password/reset/", {"email": "driver@example.com"})
    assert refused.status_code == 429
    assert len(mail.outbox) == settings.MAIL_ADDRESS_LIMIT


def test_driver_email_change_mails_are_limited(client):
    sign_up(client, "old@example.com")
    mail.outbox.clear()
    for n in range(settings.MAIL_ADDRESS_LIMIT):
        client.post("/driver/account/email/", {"action_add": "", "email": f"new{n}@example.com"})
    sent = len(mail.outbox)
    assert 1 <= sent <= settings.MAIL_ADDRESS_LIMIT
    refused = client.post("/driver/account/email/", {"action_add": "", "email": "more@example.com"})
    assert refused.status_code == 429
    assert len(mail.outbox) == sent
