"""An Idempotency-Key's attempt holds its lock for the whole request (backoffice/idempotency.py),
whatever the request does to its own database connection: a view that gives its connection back
in the middle (`send_command_sync` does, while a charger answers) no longer lets a retry with the
same key run the write a second time."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token as ApiToken
from rest_framework.test import APIClient

from authorization.api import TokenViewSet
from authorization.models import Token
from backoffice.models import IdempotentRequest
from tests.concurrency import all_at_once
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks and two requests on two connections: PostgreSQL")


def _post(user, prop, key: str):
    client = APIClient()
    api_token, _ = ApiToken.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token.key}")
    card = {"uid": "04AABBCC", "organization": prop.organization_id, "valid": True}
    return client.post("/api/v1/tokens/", card, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _advisory_locks_held() -> int:
    """Advisory locks held in this test's database (pg_locks lists the whole server's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return int(cursor.fetchone()[0])


@pytest.fixture
def owner(prop):
    user = MembershipFactory(organization=prop.organization, role="owner").user
    ApiToken.objects.get_or_create(user=user)
    return user


def test_two_requests_with_one_key_at_once_write_once(owner, prop):
    answers = all_at_once(lambda: _post(owner, prop, "k-1"), lambda: _post(owner, prop, "k-1"))
    codes = sorted(answer.status_code for answer in answers)
    assert codes in ([201, 201], [201, 409]), codes  # a replay of the first, or "still running"
    assert Token.objects.filter(organization=prop.organization).count() == 1
    assert _advisory_locks_held() == 0  # each attempt's lock went with its own connection


def test_a_request_that_gives_its_connection_back_keeps_its_key_locked(owner, prop, monkeypatch):
    """The first attempt closes its connection in the middle (as `send_command_sync` does before
    it waits for a charger): a retry meanwhile is still a 409, and the write is done once."""
    inside, release = threading.Event(), threading.Event()
    first_create = TokenViewSet.perform_create

    def create_after_giving_the_connection_back(self, serializer):
        if not inside.is_set():  # the first attempt
            connection.close()
            inside.set()
            assert release.wait(timeout=60)
        return first_create(self, serializer)

    monkeypatch.setattr(TokenViewSet, "perform_create", create_after_giving_the_connection_back)
    first: list[object] = []

    def first_attempt() -> None:
        try:
            first.append(_post(owner, prop, "k-2"))
        finally:
            connection.close()

    thread = threading.Thread(target=first_attempt)
    thread.start()
    try:
        assert inside.wait(timeout=60)
        retry = _post(owner, prop, "k-2")
        assert retry.status_code == 409, (retry.status_code, retry.content)  # was 201: twice
        assert _advisory_locks_held() == 1  # the first attempt's, on its own connection
    finally:
        release.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert first[0].status_code == 201, first[0].content
    assert Token.objects.filter(organization=prop.organization).count() == 1
    assert IdempotentRequest.objects.get(key="k-2").status_code == 201
    assert _post(owner, prop, "k-2")["Idempotent-Replayed"] == "true"
    assert _advisory_locks_held() == 0
