"""The inbound email hooks: raw MIME from the mail server (bearer secret) and Mailgun's route (signed).

Both answer 404 while their secret is not configured (replies are then only sent and logged),
are CSRF-exempt (a mail system has no session; the secret or signature authenticates it) and
rate limited per client address. An authenticated mail that is not attached still answers 200,
so the mail system does not retry it.
"""

from __future__ import annotations

import hmac
import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from backoffice import throttle

from ..inbound import (
    MAX_RAW_BYTES,
    mailgun_signature_valid,
    mailgun_token_first_use,
    parse_mailgun,
    receive_email,
)

security_log = logging.getLogger("support.security")

LIMIT_PER_MIN = 120
WINDOW_S = 60


def _over_limit(request: HttpRequest, hook: str) -> bool:
    limit = int(getattr(settings, "SUPPORT_INBOUND_LIMIT_PER_MIN", LIMIT_PER_MIN))
    ip = request.META.get("REMOTE_ADDR") or "unknown"
    # Counted in this process's memory while Redis is down: replies still land, still limited.
    window = int(time.time()) // WINDOW_S
    return throttle.hit(f"support-inbound-{hook}", f"{ip}:{window}", WINDOW_S + 5) > limit


def _too_many() -> HttpResponse:
    response = JsonResponse({"error": "rate limited"}, status=429)
    response["Retry-After"] = str(WINDOW_S)
    return response


def _result(message: object) -> JsonResponse:
    return JsonResponse({"result": "attached" if message is not None else "not attached"})


@csrf_exempt  # a mail server, authenticated by the bearer secret
@require_POST
def inbound_mime(request: HttpRequest) -> HttpResponse:
    """POST /support/inbound/mime/: the raw RFC 5322 message, `Authorization: Bearer <secret>`."""
    secret = getattr(settings, "SUPPORT_INBOUND_SECRET", "")
    if not secret:
        raise Http404("Inbound email is not configured")
    if _over_limit(request, "mime"):
        return _too_many()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), secret.encode()
    ):
        security_log.warning(
            "Inbound email hook: wrong or missing secret from %s", request.META.get("REMOTE_ADDR")
        )
        return JsonResponse({"error": "forbidden"}, status=403)
    if request.content_type != "message/rfc822":
        return JsonResponse(
            {"error": "send the message as Content-Type: message/rfc822"}, status=415
        )
    # Read the stream directly: request.body refuses anything over DATA_UPLOAD_MAX_MEMORY_SIZE, and
    # a mail with attachments is bigger; only its first MAX_RAW_BYTES (the text part) are needed.
    raw = request.read(MAX_RAW_BYTES)
    return _result(receive_email(raw, transport="mime"))


@csrf_exempt  # Mailgun, authenticated by its signature
@require_POST
def inbound_mailgun(request: HttpRequest) -> HttpResponse:
    """POST /support/inbound/mailgun/: Mailgun's inbound route ("forward") with its signed fields."""
    signing_key = getattr(settings, "MAILGUN_SIGNING_KEY", "")
    if not signing_key:
        raise Http404("Inbound email is not configured")
    if _over_limit(request, "mailgun"):
        return _too_many()
    try:
        fields = request.POST
    except RequestDataTooBig:
        # Mailgun retries any other error for hours; 406 tells it to stop.
        security_log.warning("Mailgun inbound POST over DATA_UPLOAD_MAX_MEMORY_SIZE: refused")
        return JsonResponse({"error": "too large"}, status=406)
    signed = mailgun_signature_valid(
        signing_key=signing_key,
        timestamp=fields.get("timestamp", ""),
        token=fields.get("token", ""),
        signature=fields.get("signature", ""),
        now=time.time(),
    )
    if not signed or not mailgun_token_first_use(fields.get("token", "")):
        security_log.warning(
            "Mailgun inbound POST with a bad, stale or replayed signature from %s",
            request.META.get("REMOTE_ADDR"),
        )
        return JsonResponse({"error": "forbidden"}, status=403)
    return _result(receive_email(parse_mailgun(fields), transport="mailgun"))
