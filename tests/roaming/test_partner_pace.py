"""A partner that answers 429 Too Many Requests (or 503) with `Retry-After` (RFC 9110: whole
seconds or an HTTP date) is asked again when it said, not on our own back-off (5 s, doubling);
a wait longer than our longest back-off (an hour) is capped at it."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from email.utils import format_datetime as http_date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from chargers.models import Connector
from chargers.signals import connector_status_changed
from chargers.state import charger as connection_state
from roaming.models import Delivery, OcpiLog
from tests.roaming.conftest import connected_partner


class Busy:
    """A partner's receiver answering every request with `status` and a Retry-After of
    `retry_after()` (called per request: an HTTP date is computed when it answers)."""

    def __init__(self, status: int, retry_after) -> None:
        self.received: list[str] = []
        busy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_PATCH(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                busy.received.append(self.path)
                raw = json.dumps({"status_code": 2000, "status_message": "slow down"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Retry-After", retry_after())
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/emsp/2.2.1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _status(charger, connector_id: int, status: str) -> None:
    connection_state.connector_status_update(
        charger_id=charger.pk,
        connector_id=connector_id,
        status=status,
        error_code="NoError",
        timestamp=timezone.now(),
    )
    connector_status_changed.send(sender=Connector, connectors=[(charger.pk, connector_id)])


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, lambda: "120", 120),
        (503, lambda: "600", 600),
        (429, lambda: http_date(timezone.now() + timedelta(seconds=900), usegmt=True), 900),
        (429, lambda: "86400", 3600),  # a day: capped at our longest back-off
        (429, lambda: "9" * 400, 3600),  # more digits than any wait (float inf, int refuses)
    ],
    ids=["429 seconds", "503 seconds", "429 http date", "429 a day, capped", "400 digits"],
)
def test_a_partner_that_asks_us_to_wait_is_asked_again_when_it_said(
    settings, operator, status, retry_after, wait
):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    busy = Busy(status, retry_after)
    try:
        partner = connected_partner(operator["org"], base=busy.base)
        before = timezone.now()
        _status(operator["cp_public"], 1, "Charging")
        after = timezone.now()
        assert len(busy.received) == 1
        push = Delivery.objects.get(partner=partner)
        assert push.status == Delivery.Status.PENDING and push.partner_down
        # Our own back-off after a first failure is 5 s; the partner's wait is used instead
        # (an HTTP date is whole seconds: up to 1 s earlier than `before` + wait).
        assert (
            before + timedelta(seconds=wait - 1)
            <= push.next_attempt_at
            <= after + timedelta(seconds=wait)
        )
        assert f"Retry-After {wait} s" in push.last_error
        log = OcpiLog.objects.get(partner=partner, direction=OcpiLog.Direction.OUT)
        assert log.http_status == status

        # Another change within that wait is queued, not sent into the same refusal.
        _status(operator["cp_public"], 2, "Faulted")
        assert len(busy.received) == 1
        assert Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).count() == 2
    finally:
        busy.close()


# Not seconds, not a date: ignored. "²" is a digit to str.isdigit, not to int().
@pytest.mark.parametrize("value", ["soon", "\u00b2"], ids=["a word", "superscript two"])
def test_a_429_without_retry_after_keeps_our_own_back_off(settings, operator, value):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    busy = Busy(429, lambda: value)
    try:
        partner = connected_partner(operator["org"], base=busy.base)
        before = timezone.now()
        _status(operator["cp_public"], 1, "Charging")
        push = Delivery.objects.get(partner=partner)
        assert before + timedelta(seconds=5) <= push.next_attempt_at
        assert push.next_attempt_at <= timezone.now() + timedelta(seconds=5)
        assert "Retry-After" not in push.last_error
    finally:
        busy.close()
