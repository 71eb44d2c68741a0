"""Our START_SESSION reached the CPO but its answer did not reach us (slower than our OCPI
timeout): the driver is told the network did not answer. When the CPO's CommandResult comes,
it proves the CPO took the command: the start counts as under way (no second START_SESSION
from a second tap) and the driver is told what the charger said."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.test import Client

from drivers.models import DriverProfile
from roaming import emsp_driving
from roaming.models import PartnerCommand
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_roaming import partner_network
from tests.factories import OrganizationFactory
from tests.roaming.conftest import auth
from tests.roaming.test_emsp_tokens import CPO_TOKEN, cpo_partner, with_identity


class SlowCommandsReceiver:
    """A CPO's Commands Receiver that takes every command and answers after `delay` seconds."""

    def __init__(self, delay: float, *, result_first: bool = False):
        self.delay = delay
        self.result_first = result_first  # post the CommandResult before answering the POST
        self.commands: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                outer.commands.append(self.path.rsplit("/", 1)[-1])
                if outer.result_first:
                    try:
                        _cpo_posts(urlparse(body["response_url"]).path, {"result": "ACCEPTED"})
                    finally:
                        connection.close()
                time.sleep(outer.delay)
                raw = json.dumps(
                    {
                        "status_code": 1000,
                        "data": {"result": "ACCEPTED", "timeout": 30},
                        "timestamp": "2026-01-01T00:00:00Z",
                    }
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # we gave up waiting

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/cpo/2.2.1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _network(settings, cpo):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    settings.OCPI_TIMEOUT_S = 1
    org = OrganizationFactory()
    identity = with_identity(org)
    emsp_driving.driver_accounts_set(identity_id=identity.pk)
    partner = cpo_partner(org, endpoints={"commands": {"RECEIVER": f"{cpo.base}/commands"}})
    return {"location": partner_network(partner), "cpo": cpo}


@pytest.fixture
def slow_network(db, settings):
    cpo = SlowCommandsReceiver(delay=2)
    yield _network(settings, cpo)
    cpo.close()


@pytest.fixture
def result_before_answer(transactional_db, settings):
    cpo = SlowCommandsReceiver(delay=2, result_first=True)
    yield _network(settings, cpo)
    cpo.close()


def _cpo_posts(path: str, body: dict) -> dict:
    response = Client().generic(
        "POST",
        path,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(CPO_TOKEN),
    )
    return response.json()


def test_a_command_result_after_a_lost_answer_counts_and_a_second_tap_sends_nothing(
    client, slow_network
):
    location, cpo = slow_network["location"], slow_network["cpo"]
    sign_up(client, "lost@example.com")
    save_card(client)
    start = f"/driver/networks/{location.pk}/start/"

    page = client.post(start, {"evse": "E1", "connector": "1"}, follow=True).content.decode()
    assert "The network did not answer" in page
    command = PartnerCommand.objects.get()

    # The CPO had it: the charger's result arrives at our response_url.
    path = f"/ocpi/2.2.1/emsp/commands/START_SESSION/{command.uid}"
    assert _cpo_posts(path, {"result": "ACCEPTED"})["status_code"] == 1000

    again = client.post(start, {"evse": "E1", "connector": "1"}, follow=True).content.decode()
    assert "You already have a session starting or running" in again
    assert cpo.commands == ["START_SESSION"] and PartnerCommand.objects.count() == 1
    activity = client.get("/driver/networks/activity/").content.decode()
    assert "The charger accepted" in activity
    assert DriverProfile.objects.get(user__email="lost@example.com").roaming_token_id


def test_a_command_result_that_comes_before_the_lost_answer_is_not_undone(
    client, result_before_answer
):
    """The charger was quick: the CPO's CommandResult came while our POST still waited for the
    CPO's answer, which then never came in time. The result stands."""
    location, cpo = result_before_answer["location"], result_before_answer["cpo"]
    sign_up(client, "quick@example.com")
    save_card(client)
    start = f"/driver/networks/{location.pk}/start/"

    client.post(start, {"evse": "E1", "connector": "1"})

    command = PartnerCommand.objects.get()
    assert (command.response, command.result) == ("ACCEPTED", "ACCEPTED")
    again = client.post(start, {"evse": "E1", "connector": "1"}, follow=True).content.decode()
    assert "You already have a session starting or running" in again
    assert cpo.commands == ["START_SESSION"]
    assert "The charger accepted" in client.get("/driver/networks/activity/").content.decode()
