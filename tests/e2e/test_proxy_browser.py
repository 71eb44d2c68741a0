"""In real Chromium: a host opens Chargers > View > Proxy, sees both upstream backoffices with their
connection state and which one leads, makes the other one Leader, and the charger's next Authorize
follows the new Leader (the real server, a charger on a socket, two `ocpp`-package upstreams)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import time

import pytest
from websockets.sync.client import connect

from chargers.proxy import services as proxy_services
from chargers.proxy.models import Backoffice
from tests.conftest import free_port, start_live_server, stop_live_server
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory
from tests.upstream_csms import UpstreamCsms


@pytest.fixture
def live_server_proc(transactional_db, tmp_path, settings):
    """The real server, with this test's upstream backoffices (on 127.0.0.1) allow-listed by
    staff: the outbound guard refuses loopback addresses otherwise (backoffice/outbound.py)."""
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal", OUTBOUND_URL_ALLOWLIST="127.0.0.1"
    )
    yield server
    stop_live_server(server)


pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PASSWORD = "secret-pass-123"
CP_PASSWORD = "proxy-browser-password-1"
STATION = "PX-WEB-1"


def _port() -> int:
    return free_port()  # this worker's own (tests/parallel.py)


class Upstreams:
    """The two other backoffices, on their own event loop in a thread."""

    def __init__(self, *servers: UpstreamCsms):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers = servers
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(10)

    def close(self) -> None:
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Charger:
    def __init__(self, url: str):
        auth = base64.b64encode(f"{STATION}:{CP_PASSWORD}".encode()).decode()
        self.ws = connect(
            f"{url}/ocpp/{STATION}",
            subprotocols=["ocpp1.6"],
            open_timeout=10,
            additional_headers={"Authorization": f"Basic {auth}"},
        )
        self.ids = itertools.count(1)

    def call(self, action: str, payload: dict) -> dict:
        unique_id = f"b{next(self.ids)}"
        self.ws.send(json.dumps([2, unique_id, action, payload]))
        while True:
            frame = json.loads(self.ws.recv(timeout=20))
            if frame[0] == 3 and frame[1] == unique_id:
                return frame[2]


def _wait_connected(names: list[str]) -> None:
    deadline = time.monotonic() + 20
    while Backoffice.objects.filter(
        charger__station_id=STATION, name__in=names, status="connected"
    ).count() < len(names):
        assert time.monotonic() < deadline, list(
            Backoffice.objects.values_list("name", "status", "last_error")
        )
        time.sleep(0.1)


def test_host_sees_both_backoffices_and_changes_the_leader(live_server_proc, transactional_db):
    from playwright.sync_api import sync_playwright

    from tests.axe import Axe

    prop = PropertyFactory(name="Depot")
    user = UserFactory(username="proxyhost@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, user=user, role="owner")
    charger = ChargerFactory(
        property=prop, station_id=STATION, name="Depot bay", security_profile=1
    )
    charger.set_ocpp_password(CP_PASSWORD)
    charger.save()
    acme_port, beta_port = _port(), _port()
    proxy_services.backoffice_save(
        charger,
        name="Acme CSMS",
        url=f"ws://127.0.0.1:{acme_port}",
        role="leader",
        password="acme-secret-1",
    )
    proxy_services.backoffice_save(
        charger, name="Beta CSMS", url=f"ws://127.0.0.1:{beta_port}", password="beta-secret-1"
    )
    upstreams = Upstreams(
        UpstreamCsms(
            "Acme", port=acme_port, password="acme-secret-1", tx_base=100, default_status="Invalid"
        ),
        UpstreamCsms(
            "Beta",
            port=beta_port,
            password="beta-secret-1",
            tx_base=200,
            statuses={"BETA-CARD": "Accepted"},
            default_status="Invalid",
        ),
    )
    cp = Charger(live_server_proc.ws_url)
    base = live_server_proc.url
    try:
        _wait_connected(["Acme CSMS", "Beta CSMS"])
        assert (
            cp.call("Authorize", {"idTag": "BETA-CARD"})["idTagInfo"]["status"] == "Invalid"
        )  # Acme leads
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", "proxyhost@example.com")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")

            page.goto(f"{base}/chargers/")
            page.click(f"a[href='/chargers/{STATION}/']")
            page.click("nav.tabs >> text=Proxy")
            rows = page.locator("#proxy-table tbody tr")
            assert rows.count() == 3  # this system + two backoffices
            acme = page.locator("#proxy-table tr", has_text="Acme CSMS")
            beta = page.locator("#proxy-table tr", has_text="Beta CSMS")
            assert "Leader" in acme.locator("td[data-label=Role]").inner_text()
            assert "Follower" in beta.locator("td[data-label=Role]").inner_text()
            assert "Connected" in acme.locator("td[data-label=Connection]").inner_text()
            assert "Connected" in beta.locator("td[data-label=Connection]").inner_text()
            results = Axe().run(page)
            assert results.violations_count == 0, results.generate_report()

            page.once("dialog", lambda dialog: dialog.accept())
            beta.locator("text=Make Leader").click()
            page.wait_for_selector("text=Beta CSMS is now the Leader")
            beta = page.locator("#proxy-table tr", has_text="Beta CSMS")
            assert "Leader" in beta.locator("td[data-label=Role]").inner_text()
            browser.close()

        # The next Authorize follows the new Leader (the server reloads the links' roles live).
        deadline = time.monotonic() + 10
        while cp.call("Authorize", {"idTag": "BETA-CARD"})["idTagInfo"]["status"] != "Accepted":
            assert time.monotonic() < deadline, "the charger still hears the old Leader"
            time.sleep(0.3)
    finally:
        cp.ws.close()
        upstreams.close()
