"""The throttles beside sign-in (backoffice/throttle.py) while Redis, the shared cache, is down or
restarting: password reset and OCPI partners are still served (each process counts on its own
meanwhile) and the throttles still hold (docs/security.md, "Throttles")."""

import pytest
from django.conf import settings
from django.core import mail

from backoffice import shared_cache, throttle
from backoffice.models import Organization
from backoffice.services import member_add
from tests.backoffice.dependencies_down import refused_redis_cache
from tests.roaming.conftest import auth, connected_partner

pytestmark = pytest.mark.django_db

CREDENTIALS = "/ocpi/2.2.1/credentials"


@pytest.fixture(autouse=True)
def _redis_down(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = refused_redis_cache()
    throttle.fallback.clear()
    shared_cache.forget_failure()
    yield
    throttle.fallback.clear()
    shared_cache.forget_failure()


def test_password_reset_mails_are_sent_and_still_limited_while_redis_is_down(client):
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
    refused = client.post("/accounts/password-reset/", {"email": "host@example.com"})
    assert refused.status_code == 429
    assert "Too many password reset emails" in refused.content.decode()
    assert len(mail.outbox) == settings.MAIL_ADDRESS_LIMIT


def test_an_ocpi_partner_is_served_and_token_guessing_still_refused_while_redis_is_down(client):
    connected_partner(Organization.objects.create(name="CPO"))
    assert client.get(CREDENTIALS, HTTP_AUTHORIZATION=auth()).status_code == 200
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        answer = client.get(
            CREDENTIALS, HTTP_AUTHORIZATION=auth(f"guess-{n}"), REMOTE_ADDR="10.9.0.1"
        )
        assert answer.status_code == 401
    refused = client.get(CREDENTIALS, HTTP_AUTHORIZATION=auth("guess-x"), REMOTE_ADDR="10.9.0.1")
    assert refused.status_code == 429
    assert "Too many unknown credentials tokens" in refused.json()["status_message"]
    assert client.get(CREDENTIALS, HTTP_AUTHORIZATION=auth()).status_code == 200
