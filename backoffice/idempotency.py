"""`Idempotency-Key` on the REST API's writes: a client that retries a POST, PUT, PATCH or
DELETE after a timeout or a dropped connection sends the same key, and gets the first answer
again instead of a second refund, start or card (the way Stripe's API and the IETF draft
"The Idempotency-Key HTTP Header Field" do it).

- The key is the client's, 1 to 255 visible ASCII characters, scoped to the signed-in user
  (a token's or a session's), kept `KEEP` (a day).
- The same key with another method, path or body is a 422: it names another request.
- While the first request runs, a retry with its key is a 409 with `Retry-After`.
- An answer below 500 is kept and replayed with `Idempotent-Replayed: true`; a 5xx is not kept
  (the write was rolled back), so the retry runs again.
- A first request that never finished gives its key back as soon as it is known gone: on
  PostgreSQL each attempt holds a session advisory lock on its key while it runs (taken before
  its row is written, given back after its answer is kept), and the database drops it with the
  attempt's connection, so a retry after the attempt's process or the database itself died finds
  the lock free and runs (a live attempt's lock is held: 409). On SQLite, and as a backstop for a
  lock left held, the key is given back `ABANDONED` after the attempt began.
- The lock lives on a connection of its own, opened for the attempt and closed after it, never on
  the request's: the request's connection may be closed or handed back to the pool in the middle
  of the request (`send_command_sync` gives it back while a charger answers), which dropped the
  lock (a retry then ran the write a second time) or left it held on a pooled connection that
  another request took next.
- Without the header nothing changes: one indexed lookup only for requests that carry it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    connection,
    connections,
    transaction,
)
from django.http import HttpRequest, HttpResponse, JsonResponse, RawPostDataException
from django.utils import timezone

from .models import IdempotentRequest

HEADER = "HTTP_IDEMPOTENCY_KEY"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREFIX = "/api/"
KEEP = timedelta(hours=24)
ABANDONED = timedelta(minutes=5)  # far beyond any request's own timeout
MAX_BODY = 1_000_000  # an answer larger than this is not kept (the API's writes answer small)

BAD_KEY = "Idempotency-Key must be 1 to 255 visible ASCII characters."
OTHER_REQUEST = (
    "This Idempotency-Key was used for another request (method, path or body): "
    "use a new key for a new request."
)
RUNNING = "A request with this Idempotency-Key is still running: retry in a moment."


def _valid(key: str) -> bool:
    return 0 < len(key) <= 255 and all(33 <= ord(c) <= 126 or c == " " for c in key)


def _user_id(request: HttpRequest) -> int | None:
    """The user the API will act for: the session's, or the token's (read here as DRF's
    TokenAuthentication reads it; a bad token is the view's 401 to give)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return int(user.pk)
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import APIException

    try:
        found = TokenAuthentication().authenticate(request)
    except APIException:
        return None
    return int(found[0].pk) if found else None


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.get_full_path()):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    try:
        digest.update(request.body)
    except RawPostDataException:  # a form an earlier middleware already parsed from the stream
        for name, values in sorted(request.POST.lists()):
            digest.update(repr((name, values)).encode("utf-8", "surrogateescape"))
        for name, uploads in sorted(request.FILES.lists()):
            digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
            for upload in uploads:
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    return digest.hexdigest()


def _lock_id(user_id: int, key: str) -> int:
    """The advisory lock of a user's key: a signed 64-bit number (PostgreSQL's one-key space)."""
    digest = hashlib.blake2b(f"idempotency\0{user_id}\0{key}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class AttemptLock:
    """The lock that shows an attempt alive, on a connection of its own (not pooled, not the
    request's), so nothing the request does to its own connection gives it back early."""

    def __init__(self, user_id: int, key: str) -> None:
        request_db = connections[DEFAULT_DB_ALIAS]  # the request's, itself (not the proxy)
        settings_dict = dict(request_db.settings_dict)
        options = dict(settings_dict.get("OPTIONS") or {})
        options.pop("pool", None)  # a pooled connection outlives the attempt, its lock with it
        settings_dict.update(OPTIONS=options, CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
        self._db = type(request_db)(settings_dict, alias=request_db.alias)
        try:
            with self._db.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [_lock_id(user_id, key)])
                self.taken = bool(cursor.fetchone()[0])
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Close the connection: PostgreSQL drops its lock with it."""
        try:
            self._db.close()
        except DatabaseError:  # the connection is gone, and its lock with it
            pass


def _lock(user_id: int, key: str) -> AttemptLock | None:
    """Take the lock that shows this attempt alive (`taken`: False when a live attempt of any
    process holds it); None on a database without advisory locks (SQLite)."""
    if connection.vendor != "postgresql":
        return None
    return AttemptLock(user_id, key)


def _claim(user_id: int, key: str, digest: str, locked: bool | None) -> IdempotentRequest | None:
    """Record the key as running; None when this request now holds it, else the row found.
    `locked` (`_lock`): True, no live attempt has the key, so a running row is a dead one's;
    False, a live attempt has it; None, not known (SQLite)."""
    now = timezone.now()
    rows = IdempotentRequest.objects.filter(user_id=user_id, key=key)
    if locked is False:
        found = rows.first()
        if found is None:  # the live attempt has not written its row yet: still running
            return IdempotentRequest(fingerprint=digest)
        if found.created_at >= now - (ABANDONED if found.status_code is None else KEEP):
            return found
    try:
        with transaction.atomic():
            IdempotentRequest.objects.create(
                user_id=user_id, key=key, fingerprint=digest, created_at=now
            )
        return None
    except IntegrityError:
        pass
    # An expired answer, or a first request that died: the key is free again (one taker wins).
    stale = rows.filter(created_at__lt=now - KEEP) | rows.filter(
        status_code__isnull=True, created_at__lt=now - ABANDONED
    )
    if locked:
        stale = stale | rows.filter(status_code__isnull=True)  # its attempt is gone
    if stale.update(fingerprint=digest, created_at=now, status_code=None, body=b"", location=""):
        return None
    found = rows.first()
    if found is None:  # pruned meanwhile: take it
        return _claim(user_id, key, digest, locked)
    return found


def _replay(row: IdempotentRequest) -> HttpResponse:
    response = HttpResponse(
        bytes(row.body), status=row.status_code or 200, content_type=row.content_type or None
    )
    if row.location:
        response["Location"] = row.location
    response["Idempotent-Replayed"] = "true"
    return response


def _keep(user_id: int, key: str, response: HttpResponse) -> None:
    rows = IdempotentRequest.objects.filter(user_id=user_id, key=key, status_code__isnull=True)
    content = b"" if response.streaming else response.content
    if response.status_code >= 500 or response.streaming or len(content) > MAX_BODY:
        rows.delete()  # not replayable: a retry runs again
        return
    rows.update(
        status_code=response.status_code,
        content_type=response.get("Content-Type", "")[:100],
        location=response.get("Location", "")[:2000],
        body=content,
    )


def _refusal(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"detail": message}, status=status)
    if status == 409:
        response["Retry-After"] = "1"
    return response


class IdempotencyKeyMiddleware:
    """After authentication: the API's writes that carry an Idempotency-Key."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get(HEADER)
        if key is None or request.method not in WRITES or not request.path.startswith(PREFIX):
            return self.get_response(request)
        if not _valid(key):
            return _refusal(BAD_KEY, 400)
        user_id = _user_id(request)
        if user_id is None:
            return self.get_response(request)  # the view's 401/403
        try:
            digest = fingerprint(request)
        except RequestDataTooBig:
            return self.get_response(request)  # the upload limit's 400 (handler400)
        lock = _lock(user_id, key)
        locked = None if lock is None else lock.taken
        try:
            found = _claim(user_id, key, digest, locked)
            if found is not None:
                return _answer_for(found, digest)
            try:
                response = self.get_response(request)
            except BaseException:
                IdempotentRequest.objects.filter(
                    user_id=user_id, key=key, status_code__isnull=True
                ).delete()
                raise
            _keep(user_id, key, response)
            return response
        finally:
            if lock is not None:
                lock.release()


def _answer_for(found: IdempotentRequest, digest: str) -> HttpResponse:
    if found.fingerprint != digest:
        return _refusal(OTHER_REQUEST, 422)
    if found.status_code is None:
        return _refusal(RUNNING, 409)
    return _replay(found)


def prune(now: Any = None) -> int:
    """Forget keys older than KEEP (the periodic task `backoffice.idempotency_keys_prune`)."""
    cutoff = (now or timezone.now()) - KEEP
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def schema_hook(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular: every API write documents the optional Idempotency-Key header."""
    parameter = {
        "in": "header",
        "name": "Idempotency-Key",
        "required": False,
        "schema": {"type": "string", "maxLength": 255},
        "description": "Retry-safe writes: a retry with the same key (and the same request) "
        "gets the first answer again, kept 24 h; another request with it is a 422, and while "
        "the first runs a 409.",
    }
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() in WRITES and isinstance(operation, dict):
                operation.setdefault("parameters", []).append(dict(parameter))
    return result
