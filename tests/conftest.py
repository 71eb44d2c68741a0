import os
import socket

import pytest
from django.conf import settings

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config):
    # CI must exercise PostgreSQL and Redis for real: fail loudly instead of skipping.
    if os.environ.get("REQUIRE_SERVICES") == "true":
        problems = []
        if not settings.IS_POSTGRES:
            problems.append("DATABASE_URL does not point at PostgreSQL")
        elif not _reachable("127.0.0.1", 5432):
            problems.append("PostgreSQL is not reachable on 127.0.0.1:5432")
        if not settings.REDIS_URL:
            problems.append("REDIS_URL is not set")
        elif not _reachable("127.0.0.1", 6379):
            problems.append("Redis is not reachable on 127.0.0.1:6379")
        if problems:
            raise pytest.UsageError("CI needs its services: " + "; ".join(problems))


@pytest.fixture(autouse=True)
def _clean_caches():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _flush_message_log():
    """Detach the OCPP log writer from the test's event loop; tests that read the log flush it."""
    from chargers.message_log import writer

    yield
    writer._messages.clear()
    writer._meters.clear()
    writer._seen.clear()
    writer._task = None
    writer._loop = None


@pytest.fixture
def prop(db):
    return PropertyFactory()


@pytest.fixture
def charger(db, prop):
    return ChargerFactory(property=prop, station_id="CP-TEST-1")


@pytest.fixture
def token(db, prop):
    return TokenFactory(uid="04A1B2C3", organization=prop.organization)


@pytest.fixture
def host(db, prop):
    return MembershipFactory(organization=prop.organization, role="owner").user


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
