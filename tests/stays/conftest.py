import pytest

from stays.models import PmsIntegration, Unit
from stays.services.pms import integration_credentials_set
from tests.factories import PropertyFactory


@pytest.fixture(autouse=True)
def _fast_passwords(request, settings):
    # Not for tests against the real server process: it checks passwords with the real hashers.
    if request.node.get_closest_marker("e2e") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def guesty():
    """A Guesty integration of a location with one unit (listing L1)."""
    prop = PropertyFactory(timezone="Europe/Amsterdam")
    Unit.objects.create(property=prop, name="Cabin 1", external_id="L1")
    integration = PmsIntegration.objects.create(organization=prop.organization, vendor="guesty")
    integration_credentials_set(
        integration=integration, credentials={"client_id": "c", "client_secret": "s"}
    )
    return integration
