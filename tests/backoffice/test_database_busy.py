"""A write the database cannot finish in time (here a row lock held past PostgreSQL's
lock_timeout; in production also an exhausted connection pool, a deadlock or serialization
failure, a database that does not answer) is a 503 with Retry-After and a plain sentence, in the
API's form or the portal's, never a 500; nothing of it is saved, and the client's retry with the
same Idempotency-Key then does the write once (backoffice/unavailable.py)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from backoffice.models import Organization
from tests.backoffice.dependencies_down import rows_held_too_long
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

SENTENCE = "The database is busy or out of reach, so this request did not finish."


def row_held_too_long(organization_id: int):
    """Another connection holds the organization's row lock (lock_timeout 200 ms here)."""
    return rows_held_too_long(Organization.objects.filter(pk=organization_id))


def test_an_api_write_the_database_gives_up_on_is_a_503_and_its_retry_writes_once(
    postgresql_only,
):
    organization = OrganizationFactory(name="Before")
    owner = MembershipFactory(organization=organization, role="owner").user
    api = APIClient(raise_request_exception=False)
    api.force_login(owner)
    url = f"/api/v1/organizations/{organization.pk}/"

    def rename():
        return api.patch(url, {"name": "After"}, format="json", HTTP_IDEMPOTENCY_KEY="rename-1")

    with row_held_too_long(organization.pk):
        busy = rename()
    assert busy.status_code == 503
    assert busy["Retry-After"] == "5"
    assert busy.json()["detail"].startswith(SENTENCE)
    organization.refresh_from_db()
    assert organization.name == "Before"

    retried = rename()
    assert retried.status_code == 200 and retried.json()["name"] == "After"
    assert "Idempotent-Replayed" not in retried
    replayed = rename()
    assert replayed["Idempotent-Replayed"] == "true" and replayed.json()["name"] == "After"


def test_a_portal_write_the_database_gives_up_on_is_a_503_page(postgresql_only):
    organization = OrganizationFactory(configure_energy_reporting=True)
    owner = MembershipFactory(organization=organization, role="owner").user
    browser = Client(raise_request_exception=False)
    browser.force_login(owner)
    with row_held_too_long(organization.pk):
        busy = browser.post(f"/organizations/{organization.pk}/energy-reporting/", {})
    assert busy.status_code == 503
    assert busy["Retry-After"] == "5"
    page = busy.content.decode()
    assert SENTENCE in page and "Try again in a moment" in page
    assert "LockNotAvailable" not in page and "lock timeout" not in page
    organization.refresh_from_db()
    assert organization.configure_energy_reporting is True


async def test_under_asgi_too(postgresql_only):
    """The deployment serves through ASGI, where the error page is rendered in a worker thread."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    organization = await sync_to_async(OrganizationFactory)(name="Before")
    owner = await sync_to_async(lambda: MembershipFactory(organization=organization).user)()
    api = AsyncClient(raise_request_exception=False)
    await api.aforce_login(owner)
    held = row_held_too_long(organization.pk)
    await sync_to_async(held.__enter__)()
    try:
        busy = await api.patch(
            f"/api/v1/organizations/{organization.pk}/",
            {"name": "After"},
            content_type="application/json",
        )
    finally:
        await sync_to_async(held.__exit__)(None, None, None)
    assert busy.status_code == 503
    assert busy.json()["detail"].startswith(SENTENCE)
