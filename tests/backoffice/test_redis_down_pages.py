"""A page whose code needs Redis and has no way on without it (here django-allauth's rate limit
on driver sign-up, which reads the cache) answers 503 with Retry-After and a plain sentence while
Redis is down, not a 500 (backoffice/unavailable.py); nothing is saved."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from backoffice import shared_cache
from tests.backoffice.dependencies_down import refused_redis_cache

pytestmark = pytest.mark.django_db

SENTENCE = "A service this site relies on is not answering, so this request did not finish."


@pytest.fixture(autouse=True)
def _redis_down(settings):
    settings.CACHES = refused_redis_cache()
    yield
    shared_cache.forget_failure()


def test_driver_sign_up_while_redis_is_down_is_a_503_in_plain_words():
    browser = Client(raise_request_exception=False)
    answer = browser.post(
        "/driver/account/signup/",
        {
            "email": "d@example.com",
            "password1": "Xx-12345678-long",
            "password2": "Xx-12345678-long",
        },
    )
    assert answer.status_code == 503
    assert answer["Retry-After"] == "5"
    page = answer.content.decode()
    assert SENTENCE in page and "ConnectionError" not in page and "127.0.0.1" not in page
    assert not get_user_model().objects.filter(email="d@example.com").exists()
