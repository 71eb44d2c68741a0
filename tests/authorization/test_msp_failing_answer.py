"""A mobility provider whose live check fails (HTTP 5xx, 429, a proxy's HTML page, OCPI 3xxx)
has not refused the card: the charger's Authorize follows the provider's on-timeout policy, as
for no answer, and the decision says why in words. A real refusal (an unknown token, 404 with
OCPI 2004) stays a refusal whatever the policy."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async

from authorization.models import AuthorizationDecision
from tests.factories import ChargerFactory, MspFactory, TokenFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)

FAILING = {
    "503 ocpi": (503, "application/json", {"status_code": 3000, "status_message": "down"}),
    "502 html": (502, "text/html", "<html><body>Bad gateway</body></html>"),
    "429": (429, "application/json", {"status_code": 2000, "status_message": "slow down"}),
    "html at 200": (200, "text/html", "<html><body>Maintenance</body></html>"),
    "ocpi 3000 at 200": (200, "application/json", {"status_code": 3000, "status_message": "x"}),
}


class ScriptedMsp:
    def __init__(self, answer):
        self.answer = answer
        self.asked = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.asked += 1
                status, kind, body = outer.answer
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{port}/ocpi/2.2.1/tokens"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _allow_local_msp(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]


@pytest.fixture
def msp_answering():
    servers = []

    def make(answer):
        servers.append(ScriptedMsp(answer))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@sync_to_async
def _card_of_provider(url: str, on_timeout: str) -> None:
    charger = ChargerFactory(station_id="CP-A")
    msp = MspFactory(
        organization=charger.property.organization,
        live_validation_url=url,
        live_validation_token="secret-msp-credential",
        on_timeout=on_timeout,
    )
    TokenFactory(uid="BB01", organization=None, msp=msp)


async def _authorize() -> tuple[str, AuthorizationDecision]:
    client = OcppTestClient("CP-A")
    assert (await client.connect())[0]
    answer = await client.result("Authorize", {"idTag": "BB01"})
    await client.close()
    return answer["idTagInfo"]["status"], await AuthorizationDecision.objects.order_by(
        "-id"
    ).afirst()


# Each failure under one policy or the other (both policies are seen).
CASES = [
    (failure, *(("accept", "Accepted") if n % 2 == 0 else ("reject", "Invalid")))
    for n, failure in enumerate(FAILING)
]


@pytest.mark.parametrize("failure,policy,status", CASES, ids=[case[0] for case in CASES])
async def test_a_provider_that_fails_is_decided_by_its_on_timeout_policy(
    msp_answering, failure, policy, status
):
    msp = msp_answering(FAILING[failure])
    await _card_of_provider(msp.url, policy)

    told, decision = await _authorize()

    assert msp.asked == 1
    assert (told, decision.reason) == (status, "msp_timeout")
    # The host sees what the provider did, in words: not a refusal of the card.
    assert "could not answer" in decision.msp_response["error"]
    assert str(FAILING[failure][0]) in decision.msp_response["error"]
    assert "Traceback" not in json.dumps(decision.msp_response)


async def test_a_token_the_provider_does_not_know_is_refused_whatever_the_policy(msp_answering):
    msp = msp_answering(
        (404, "application/json", {"status_code": 2004, "status_message": "Unknown token"})
    )
    await _card_of_provider(msp.url, "accept")

    told, decision = await _authorize()

    assert (told, decision.reason) == ("Invalid", "msp_rejected")
