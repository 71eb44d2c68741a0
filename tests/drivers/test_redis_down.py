"""A signed-in driver's pages still open while Redis (the cache) is down: the header's "Other
networks" link is read from the database then, instead of the page failing."""

import pytest

from backoffice import shared_cache
from roaming import emsp_driving
from tests.backoffice.dependencies_down import refused_redis_cache
from tests.drivers.conftest import sign_up
from tests.factories import OrganizationFactory
from tests.roaming.test_emsp_tokens import with_identity

pytestmark = pytest.mark.django_db


def test_the_driver_home_opens_with_its_other_networks_link(client, settings):
    identity = with_identity(OrganizationFactory())
    emsp_driving.driver_accounts_set(identity_id=identity.pk)
    sign_up(client, "redis-down@example.com")  # allauth's sign-up needs the cache: before
    settings.CACHES = refused_redis_cache()
    try:
        answer = client.get("/driver/")
        assert answer.status_code == 200
        assert "Other networks" in answer.content.decode()
    finally:
        shared_cache.forget_failure()
