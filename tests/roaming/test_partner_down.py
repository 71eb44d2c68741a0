"""A partner that is down (unreachable, 5xx, 429 Too Many Requests, an HTML page, OCPI 3xxx)
is left alone until its pushes' back-off is over: the next status change is queued for it, not
sent into the same failure (each try can cost the whole OCPI timeout), and the other partners
are served at once. When it is back it gets every waiting push, in order."""

import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from chargers.models import Connector
from chargers.signals import connector_status_changed
from chargers.state import charger as connection_state
from roaming import services, tasks
from roaming.models import Delivery, OcpiLog, Partner
from tests.factories import MembershipFactory
from tests.roaming.conftest import connected_partner
from tests.roaming.emsp_stub import EmspStub

OK = (200, "application/json", {"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"})

DOWN_ANSWERS = {
    "5xx": (503, "application/json", {"status_code": 3000, "status_message": "down"}),
    "429": (429, "application/json", {"status_code": 2000, "status_message": "slow down"}),
    "html page at 200": (200, "text/html", "<html><body>Maintenance</body></html>"),
    "ocpi 3000 at 200": (200, "application/json", {"status_code": 3000, "status_message": "x"}),
}


class Scripted:
    """A partner's receiver answering every request with `answer` and counting them."""

    def __init__(self, answer):
        self.answer = answer
        self.received: list[tuple[str, dict]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_PATCH(self):
                length = int(self.headers.get("Content-Length") or 0)
                scripted.received.append((self.path, json.loads(self.rfile.read(length))))
                status, kind, body = scripted.answer
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/emsp/2.2.1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def healthy(settings, operator):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    stub = EmspStub()
    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub-with-this"
    )
    stub.cpo_token = partner.outgoing_token
    yield stub
    stub.close()


def _status(charger, connector_id, status):
    connection_state.connector_status_update(
        charger_id=charger.pk,
        connector_id=connector_id,
        status=status,
        error_code="NoError",
        timestamp=timezone.now(),
    )
    connector_status_changed.send(sender=Connector, connectors=[(charger.pk, connector_id)])


@pytest.mark.parametrize("answer", list(DOWN_ANSWERS), ids=list(DOWN_ANSWERS))
def test_a_partner_that_is_down_waits_for_its_back_off_and_the_others_are_served(
    operator, healthy, answer
):
    broken = Scripted(DOWN_ANSWERS[answer])
    try:
        down = connected_partner(
            operator["org"], base=broken.base, country_code="FR", party_id="DWN"
        )
        charger = operator["cp_public"]

        _status(charger, 1, "Charging")
        assert len(broken.received) == 1
        assert OcpiLog.objects.filter(partner=down, direction=OcpiLog.Direction.OUT).count() == 1
        down.refresh_from_db()
        assert down.last_error  # the host sees why on the partner's page

        # The next change, within the back-off: queued for the partner that is down, not sent.
        _status(charger, 2, "Faulted")
        assert len(broken.received) == 1
        assert [p["body"]["status"] for p in healthy.requests_to("locations", "PATCH")] == [
            "CHARGING",
            "OUTOFORDER",
        ]
        assert Delivery.objects.filter(partner=down, status=Delivery.Status.PENDING).count() == 2

        # Back, and the back-off over: it gets both, in the order they happened.
        broken.answer = OK
        Delivery.objects.filter(partner=down).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        tasks.deliveries_sweep_task.delay()
        assert [body["status"] for _path, body in broken.received[1:]] == [
            "CHARGING",
            "OUTOFORDER",
        ]
        assert not Delivery.objects.filter(partner=down, status=Delivery.Status.PENDING).exists()
    finally:
        broken.close()


def test_a_push_the_partner_refuses_for_itself_does_not_hold_back_its_other_pushes(
    operator, healthy
):
    """A 4xx / OCPI 2xxx is about that one object: the partner is up, its other pushes go."""
    refusing = Scripted(
        (404, "application/json", {"status_code": 2003, "status_message": "unknown location"})
    )
    try:
        partner = connected_partner(
            operator["org"], base=refusing.base, country_code="FR", party_id="REF"
        )
        charger = operator["cp_public"]
        _status(charger, 1, "Charging")
        _status(charger, 2, "Faulted")
        assert len(refusing.received) == 2
        assert Partner.objects.get(pk=partner.pk).last_error
    finally:
        refusing.close()


def test_a_push_for_a_module_the_partner_no_longer_receives_holds_back_nothing_else(
    operator, healthy
):
    """A push whose module the partner has no receiver for (its endpoints changed since) waits
    alone: the partner is up, and its status pushes keep going, change after change."""
    partner = Partner.objects.get()
    Partner.objects.filter(pk=partner.pk).update(
        endpoints={k: v for k, v in partner.endpoints.items() if k != "tariffs"}
    )
    services.delivery_enqueue(
        partner=partner, module="tariffs", object_key="tariff:1", method="PUT", path="/1", body={}
    )
    charger = operator["cp_public"]
    _status(charger, 1, "Charging")
    Delivery.objects.filter(module="tariffs").update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    _status(charger, 2, "Faulted")

    assert [p["body"]["status"] for p in healthy.requests_to("locations", "PATCH")] == [
        "CHARGING",
        "OUTOFORDER",
    ]
    waiting = Delivery.objects.get(status=Delivery.Status.PENDING)
    assert waiting.module == "tariffs" and "no tariffs receiver" in waiting.last_error


def test_the_partner_page_says_every_push_waits_for_the_next_try(client, operator, healthy):
    """The host sees why and until when: the partner's error in words, and every waiting push
    (the ones queued after the failure too) with the time of the next try."""
    broken = Scripted(DOWN_ANSWERS["429"])
    try:
        down = connected_partner(
            operator["org"], base=broken.base, country_code="FR", party_id="DWN"
        )
        charger = operator["cp_public"]
        _status(charger, 1, "Charging")
        _status(charger, 2, "Faulted")
        client.force_login(MembershipFactory(organization=operator["org"], role="owner").user)

        page = client.get(f"/roaming/partners/{down.pk}/").content.decode()

        assert "it asked us to slow down (HTTP 429)" in page
        notice = re.search(r'<p class="notice" id="resting">(.*?)</p>', page, re.S).group(1)
        at = re.search(r"waits for the next try at (\d\d:\d\d:\d\d)\.", notice).group(1)
        # The push queued after the failure waits for the same try (not shown as due already).
        table = re.search(r'<table class="stack" id="waiting">.*?</table>', page, re.S).group(0)
        assert re.findall(r'data-label="Next attempt" class="small">([^<]*)<', table) == [at, at]
    finally:
        broken.close()


def test_support_finds_the_push_a_down_partner_waits_for_in_admin(client, operator, healthy):
    from django.contrib.auth import get_user_model

    broken = Scripted(DOWN_ANSWERS["5xx"])
    try:
        connected_partner(operator["org"], base=broken.base, country_code="FR", party_id="DWN")
        _status(operator["cp_public"], 1, "Charging")
        client.force_login(
            get_user_model().objects.create_superuser(
                "ops@example.com", "ops@example.com", "x-pass-1234567"
            )
        )

        page = client.get("/admin/roaming/delivery/?partner_down__exact=1").content.decode()

        waited_for = Delivery.objects.get(partner_down=True)
        assert f"/admin/roaming/delivery/{waited_for.pk}/change/" in page
        assert "HTTP 503" in page
        # A column and a filter of their own: which push the partner's others wait for.
        assert "column-partner_down" in page and "By partner down" in page
    finally:
        broken.close()
