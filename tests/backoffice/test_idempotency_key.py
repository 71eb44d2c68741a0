"""The REST API's `Idempotency-Key` (backoffice/idempotency.py): a write retried with its key
gets the first answer, never a second write; the key cannot name another request."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.authtoken.models import Token as ApiToken
from rest_framework.test import APIClient

from authorization.models import Token
from backoffice import idempotency
from backoffice.models import IdempotentRequest
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    """A client that signs in the way an integration does: its API token in every request."""
    client = APIClient()
    api_token, _ = ApiToken.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token.key}")
    return client


@pytest.fixture
def owner(prop):
    return MembershipFactory(organization=prop.organization, role="owner").user


def _card(prop, uid: str = "04AABBCC") -> dict:
    return {"uid": uid, "organization": prop.organization_id, "valid": True}


def test_a_retried_write_gets_the_first_answer_and_writes_once(owner, prop):
    client = _client(owner)
    first = client.post("/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201, first.content
    again = client.post("/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Token.objects.filter(organization=prop.organization).count() == 1
    # Without the key the same body is a new request (and the API says why it cannot be done).
    plain = client.post("/api/v1/tokens/", _card(prop), format="json")
    assert plain.status_code == 400 and "Idempotent-Replayed" not in plain


def test_the_same_key_for_another_request_is_a_422_and_changes_nothing(owner, prop):
    client = _client(owner)
    client.post("/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = client.post(
        "/api/v1/tokens/", _card(prop, "04DDEEFF"), format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert other.status_code == 422
    assert "used for another request" in other.json()["detail"]
    assert not Token.objects.filter(uid="04DDEEFF").exists()


def test_keys_are_each_users_own(owner, prop):
    colleague = MembershipFactory(organization=prop.organization, role="manager").user
    _client(owner).post("/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k")
    theirs = _client(colleague).post(
        "/api/v1/tokens/", _card(prop, "04DDEEFF"), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert theirs.status_code == 201  # not the owner's answer, and no 422
    assert Token.objects.filter(organization=prop.organization).count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_key_that_is_not_visible_ascii_is_a_400(owner, prop, key):
    response = _client(owner).post(
        "/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["detail"]
    assert not Token.objects.exists()


def test_a_bad_api_token_is_still_the_views_401(prop):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.post(
        "/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k-3"
    )
    assert response.status_code == 401
    assert not IdempotentRequest.objects.exists()


def _middleware_call(user, answer: HttpResponse, key: str = "k-5") -> HttpResponse:
    request = RequestFactory().post(
        "/api/v1/tokens/", data=b"{}", content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )
    request.user = user
    return idempotency.IdempotencyKeyMiddleware(lambda r: answer)(request)


def test_a_server_error_is_not_kept_so_the_retry_runs_again(owner):
    assert _middleware_call(owner, HttpResponse(status=503)).status_code == 503
    assert not IdempotentRequest.objects.exists()
    assert _middleware_call(owner, HttpResponse(b"ok", status=201)).status_code == 201
    replay = _middleware_call(owner, HttpResponse(status=500))
    assert replay.status_code == 201 and replay.content == b"ok"


def test_a_first_request_that_never_finished_gives_its_key_back(owner):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's rule; on PostgreSQL a dead attempt is known at once (below)")
    IdempotentRequest.objects.create(
        user=owner, key="k-5", fingerprint="?", created_at=timezone.now() - timedelta(minutes=1)
    )
    running = _middleware_call(owner, HttpResponse(b"ok", status=201))
    assert running.status_code == 422  # another request's key, still running
    IdempotentRequest.objects.update(fingerprint=_fingerprint_of_the_call())
    assert _middleware_call(owner, HttpResponse(b"ok", status=201)).status_code == 409
    IdempotentRequest.objects.update(created_at=timezone.now() - idempotency.ABANDONED * 2)
    taken = _middleware_call(owner, HttpResponse(b"ok", status=201))
    assert taken.status_code == 201 and "Idempotent-Replayed" not in taken
    assert IdempotentRequest.objects.get().status_code == 201


def _fingerprint_of_the_call() -> str:
    request = RequestFactory().post("/api/v1/tokens/", data=b"{}", content_type="application/json")
    return idempotency.fingerprint(request)


def test_keys_are_kept_a_day(owner):
    _middleware_call(owner, HttpResponse(b"ok", status=201))
    assert idempotency.prune(timezone.now() + timedelta(hours=23)) == 0
    assert idempotency.prune(timezone.now() + timedelta(hours=25)) == 1
    fresh = _middleware_call(owner, HttpResponse(b"second", status=201))
    assert fresh.content == b"second"


def test_the_schema_documents_the_header_on_writes_only(owner):
    client = _client(owner)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = schema["paths"]["/api/v1/tokens/"]
    names = {m: [p["name"] for p in op.get("parameters", [])] for m, op in operations.items()}
    assert "Idempotency-Key" in names["post"] and "Idempotency-Key" not in names["get"]


@pytest.mark.django_db(transaction=True)
def test_the_same_write_sent_twice_at_once_writes_once(prop):
    if connection.vendor != "postgresql":
        pytest.skip("two requests at once on two connections: PostgreSQL")
    owner = MembershipFactory(organization=prop.organization, role="owner").user
    clients = [_client(owner), _client(owner)]
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def send(client: APIClient) -> None:
        try:
            barrier.wait(timeout=60)
            response = client.post(
                "/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k-6"
            )
            answers.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(answers) in ([201, 201], [201, 409])
    assert Token.objects.filter(organization=prop.organization).count() == 1


def test_a_form_encoded_write_is_told_apart_by_its_fields(owner, prop):
    """Form bodies are read from the stream before the key is looked at (the NUL check): their
    fields, not the raw body, tell two requests apart."""
    client = _client(owner)

    def send(uid: str):
        return client.post(
            "/api/v1/tokens/",
            {"uid": uid, "organization": prop.organization_id, "valid": "true"},
            HTTP_IDEMPOTENCY_KEY="k-7",
        )

    first = send("04AABBCC")
    assert first.status_code == 201, first.content
    assert send("04AABBCC")["Idempotent-Replayed"] == "true"
    assert send("04DDEEFF").status_code == 422
    assert Token.objects.filter(organization=prop.organization).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_first_attempt_that_died_with_the_database_gives_its_key_back_at_once(prop, monkeypatch):
    """While the first attempt runs its retry is a 409; once its database connection is gone
    (the database restarted, its process died), the retry runs at once, not 5 minutes later."""
    if connection.vendor != "postgresql":
        pytest.skip("an attempt's connection killed: PostgreSQL")
    from authorization.api import TokenViewSet

    owner = MembershipFactory(organization=prop.organization, role="owner").user
    inside, release = threading.Event(), threading.Event()
    backend: list[int] = []
    first_create = TokenViewSet.perform_create

    def slow_create(self, serializer):
        if not backend:  # the first attempt: its database goes away while it works
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend.append(cursor.fetchone()[0])
            inside.set()
            assert release.wait(timeout=60)
        return first_create(self, serializer)

    monkeypatch.setattr(TokenViewSet, "perform_create", slow_create)
    first: list[object] = []

    def first_attempt() -> None:
        try:
            first.append(
                _client(owner).post(
                    "/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k-8"
                )
            )
        except Exception as exc:  # noqa: BLE001 - the attempt dies with its connection
            first.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=first_attempt)
    thread.start()
    try:
        assert inside.wait(timeout=60)
        retry = lambda: _client(owner).post(  # noqa: E731
            "/api/v1/tokens/", _card(prop), format="json", HTTP_IDEMPOTENCY_KEY="k-8"
        )
        assert retry().status_code == 409  # a live attempt: never twice
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend[0]])
        release.set()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert isinstance(first[0], Exception), first  # died with its connection
        assert IdempotentRequest.objects.get(key="k-8").status_code is None  # left "running"
        again = retry()
        assert again.status_code == 201, again.content
        assert "Idempotent-Replayed" not in again
    finally:
        release.set()
        thread.join(timeout=60)
    assert Token.objects.filter(organization=prop.organization).count() == 1
    assert retry()["Idempotent-Replayed"] == "true"
