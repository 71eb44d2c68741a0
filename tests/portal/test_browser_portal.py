"""The host portal in real headless Chromium against the real server and a charger on a socket.

Follows the support articles click by click: Chargers > View > Logs (live), search
StartTransaction, read idTagInfo status and idTag, whitelist a rejected UID into a local
token group and see the next Authorize accepted; Proxy; a command; a 390 px phone.
Screenshots of the main pages go to docs/screenshots/.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    MspFactory,
    PropertyFactory,
    TokenFactory,
    TokenGroupFactory,
    UserFactory,
)
from tests.security.csp_browser import watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# UPDATE_SCREENSHOTS=1 refreshes the README's pictures; otherwise they go to a scratch folder
# so a test run leaves the work tree clean.
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "evportal-screenshots"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "secret-pass-123"
CP_PASSWORD = "browser-test-password-1"


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


class RawCharger:
    """An OCPP 1.6J charger written from the spec text: sends CALLs, answers the server's CALLs."""

    def __init__(self, url: str, station_id: str, password: str):
        auth = base64.b64encode(f"{station_id}:{password}".encode()).decode()
        self.ws = connect(
            f"{url}/ocpp/{station_id}",
            subprotocols=["ocpp1.6"],
            open_timeout=10,
            additional_headers={"Authorization": f"Basic {auth}"},
        )
        self.replies: queue.Queue = queue.Queue()
        self.received_calls: list[tuple[str, dict]] = []
        self.ids = itertools.count(1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                frame = json.loads(text)
                if frame[0] == 2:  # a command from the central system
                    self.received_calls.append((frame[2], frame[3]))
                    answer = {"status": "Accepted"}
                    if frame[2] == "GetLocalListVersion":
                        answer = {"listVersion": 0}
                    self.ws.send(json.dumps([3, frame[1], answer]))
                else:
                    self.replies.put(frame)
        except Exception:  # socket closed at the end of the test
            pass

    def call(self, action: str, payload: dict) -> dict:
        unique_id = f"b{next(self.ids)}"
        self.ws.send(json.dumps([2, unique_id, action, payload]))
        reply = self.replies.get(timeout=10)
        assert reply[1] == unique_id, reply
        assert reply[0] == 3, reply
        return reply[2]

    def close(self) -> None:
        self.ws.close()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def portal_site(transactional_db):
    prop = PropertyFactory(name="Harbour View Garage", address="1 Quay Street, Rotterdam")
    user = UserFactory(username="host@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, user=user, role="owner")
    charger = ChargerFactory(
        property=prop, station_id="WEB-001", name="Entrance left", security_profile=1
    )
    charger.set_ocpp_password(CP_PASSWORD)
    charger.save()
    ChargerFactory(property=prop, station_id="WEB-002", name="Entrance right")
    group = TokenGroupFactory(organization=prop.organization, name="Staff cards")
    staff = TokenFactory(uid="04A1B2C3", organization=prop.organization, label="Reception")
    group.tokens.add(staff)
    TokenFactory(uid="04FF0001", organization=prop.organization, label="Lost card", blocked=True)
    msp = MspFactory(organization=prop.organization, name="PlugSurfing")
    MspFactory(organization=prop.organization, name="Shell Recharge", blocked=True)
    TokenFactory(uid="NL-PLS-0001", organization=None, msp=msp)
    return {"user": user, "charger": charger, "group": group}


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


def _login(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "host@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _charge_once(cp: RawCharger) -> None:
    """A completed session with meter values, so the sessions pages have something to show."""
    start = datetime.now(UTC) - timedelta(minutes=50)
    tx = cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 120000, "timestamp": _iso(start)},
    )["transactionId"]
    for i in range(1, 6):
        cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    {
                        "timestamp": _iso(start + timedelta(minutes=8 * i)),
                        "sampledValue": [
                            {
                                "value": str(120000 + 1500 * i),
                                "unit": "Wh",
                                "measurand": "Energy.Active.Import.Register",
                            },
                            {
                                "value": str(11000 - 300 * i),
                                "unit": "W",
                                "measurand": "Power.Active.Import",
                            },
                        ],
                    }
                ],
            },
        )
    cp.call(
        "StopTransaction",
        {
            "transactionId": tx,
            "meterStop": 128200,
            "timestamp": _iso(start + timedelta(minutes=45)),
            "reason": "EVDisconnected",
        },
    )


def test_host_follows_the_support_articles_in_the_browser(live_server_proc, portal_site, browser):
    base = live_server_proc.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    cp = RawCharger(live_server_proc.ws_url, "WEB-001", CP_PASSWORD)
    try:
        assert (
            cp.call(
                "BootNotification",
                {
                    "chargePointVendor": "Alfen",
                    "chargePointModel": "Eve Single",
                    "firmwareVersion": "6.4.0",
                },
            )["status"]
            == "Accepted"
        )
        cp.call(
            "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}
        )
        cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        )
        cp.call("Heartbeat", {})
        _charge_once(cp)

        page = browser.new_page(viewport={"width": 1280, "height": 900})
        csp_violations = watch_csp(page, [])
        _login(page, base)

        # Chargers > View > Logs, open and live.
        page.click("nav.mainnav >> text=Chargers")
        page.click("text=WEB-001")
        page.click("nav.tabs >> text=Logs")
        page.wait_for_selector("#live.on", timeout=10000)
        page.evaluate("window.__noReload = true")
        # Past the page's one-off catch-up fetch: from here only the websocket push can show a frame.
        page.wait_for_timeout(3500)

        # Swipe an unknown card: the rejected Authorize appears without reload.
        assert cp.call("Authorize", {"idTag": "DEADBEEF01"})["idTagInfo"]["status"] == "Invalid"
        # The CALL may show first ("no answer yet"); its CALLRESULT then joins the same entry.
        page.wait_for_selector(
            "details.log-entry:has-text('Authorize'):has-text('DEADBEEF01'):has-text('idTagInfo: Invalid')",
            timeout=10000,
        )
        assert page.locator("details.log-entry:has-text('DEADBEEF01')").count() == 1
        assert page.evaluate("window.__noReload") is True

        # A StartTransaction with the same card (offline-started, say): search for it.
        cp.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "DEADBEEF01",
                "meterStart": 128200,
                "timestamp": _iso(datetime.now(UTC)),
            },
        )
        page.wait_for_selector(
            "details.log-entry:has-text('StartTransaction'):has-text('DEADBEEF01')", timeout=10000
        )
        page.fill("#id_q", "StartTransaction")
        page.click("#log-filter button[type=submit]")
        page.wait_for_url("**/logs/?q=StartTransaction**")
        entries = page.locator("details.log-entry")
        assert entries.count() >= 2
        texts = [entries.nth(i).inner_text() for i in range(entries.count())]
        # Both card messages are listed: a card refused at Authorize never sends a StartTransaction.
        assert all("StartTransaction" in t or "Authorize" in t for t in texts)
        assert "never sends a StartTransaction" in page.inner_text(".card-search-note")
        assert any("idTagInfo: Invalid" in t and "DEADBEEF01" in t for t in texts)
        assert any("idTagInfo: Accepted" in t and "04A1B2C3" in t for t in texts)
        page.screenshot(path=str(SHOTS / "charger-logs-search.png"), full_page=True)
        # Invalid only: the refusals alone, whichever message carried the card.
        page.check("#id_invalid")
        page.click("#log-filter button[type=submit]")
        page.wait_for_url("**invalid=on**")
        refused = [entries.nth(i).inner_text() for i in range(entries.count())]
        assert refused and all("idTagInfo: Accepted" not in t for t in refused)
        assert any(
            "Authorize" in t and "DEADBEEF01" in t and "idTagInfo: Invalid" in t for t in refused
        )

        # Back to all messages; expand the rejected Authorize, see its JSON and whitelist the UID.
        page.click("text=Clear")
        row = page.locator("details.log-entry:has-text('Authorize'):has-text('DEADBEEF01')").first
        row.locator("summary").click()
        assert '"idTag": "DEADBEEF01"' in row.locator("pre").first.inner_text()
        assert row.locator("a.decision-link").count() == 1
        page.screenshot(path=str(SHOTS / "charger-logs.png"), full_page=True)
        row.locator("select[name=group]").select_option(label="Staff cards")
        row.locator("button:has-text('Whitelist this UID')").click()
        page.wait_for_selector(".flash-success:has-text('DEADBEEF01')")
        page.wait_for_selector("#live.on", timeout=10000)

        # The next swipe of the same card is accepted, and shows up live.
        assert cp.call("Authorize", {"idTag": "DEADBEEF01"})["idTagInfo"]["status"] == "Accepted"
        page.wait_for_selector(
            "details.log-entry:has-text('Authorize'):has-text('DEADBEEF01'):has-text('idTagInfo: Accepted')",
            timeout=10000,
        )

        # The recorded decision behind a rejection, with its reason.
        page.goto(f"{base}/chargers/WEB-001/authorizations/?status=rejected")
        page.click("table >> text=DEADBEEF01 >> xpath=../.. >> a")
        assert "Invalid" in page.inner_text("main")

        # Chargers > View > Proxy: this system alone, as Leader, connected.
        page.click("nav.tabs >> text=Proxy")
        proxy = page.inner_text("#proxy-table")
        assert "Leader" in proxy and "Connected" in proxy
        page.screenshot(path=str(SHOTS / "charger-proxy.png"), full_page=True)

        # Overview: a Soft reset, answered by the charger.
        page.click("nav.tabs >> text=Overview")
        page.select_option("#id_action", "Reset")
        page.select_option("#id_reset_type", "Soft")
        page.click("#command-form button[type=submit]")
        page.wait_for_selector(
            ".flash:has-text('Reset: the charger answered Accepted')", timeout=40000
        )
        assert ("Reset", {"type": "Soft"}) in cp.received_calls
        page.screenshot(path=str(SHOTS / "charger-overview.png"), full_page=True)

        # Tokens > local group > Add Token.
        page.click("nav.mainnav summary:has-text('Cards & roaming')")
        page.click("nav.mainnav >> text=Tokens")
        page.click("text=Staff cards")
        page.fill("#id_uid", "04C0FFEE")
        page.click("button:has-text('Add Token')")
        page.wait_for_selector("#group-tokens >> text=04C0FFEE")
        page.click("nav.mainnav summary:has-text('Cards & roaming')")
        page.click("nav.mainnav >> text=Tokens")
        page.screenshot(path=str(SHOTS / "tokens.png"), full_page=True)

        # Authorization > Roaming: is this UID valid?
        page.click("nav.mainnav summary:has-text('Cards & roaming')")
        page.click("nav.mainnav >> text=Authorization › Roaming")
        page.fill("#id_uid", "NL-PLS")
        page.click("main button[type=submit]")
        assert "Valid" in page.inner_text("#roaming-results")

        # Mobility Providers: Block is a visible button in the row (a ⋯ menu was clipped by the
        # table) and asks first; Unblock does not.
        page.click("nav.mainnav summary:has-text('Cards & roaming')")
        page.click("nav.mainnav >> text=Mobility Providers")
        # The confirmation is wired by the script at the end of the page (portal.js): a click
        # before it ran would submit without asking.
        page.wait_for_load_state("domcontentloaded")
        row = page.locator("#msp-table tr", has_text="PlugSurfing")
        block = row.locator("button:has-text('Block')")
        box, cell = block.bounding_box(), row.bounding_box()
        assert box["height"] >= 20 and box["y"] + box["height"] <= cell["y"] + cell["height"] + 1
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        block.click()
        assert asked and "PlugSurfing" in asked[0]
        assert "Active" in row.inner_text()  # dismissed: nothing changed
        page.once("dialog", lambda dialog: dialog.accept())
        block.click()
        page.wait_for_selector(".flash:has-text('PlugSurfing is blocked')")
        page.screenshot(path=str(SHOTS / "mobility-providers.png"), full_page=True)
        row = page.locator("#msp-table tr", has_text="PlugSurfing")
        row.locator("button:has-text('Unblock')").click()
        page.wait_for_selector(".flash:has-text('PlugSurfing is unblocked')")

        # Locations: roaming options.
        page.click("nav.mainnav >> text=Locations")
        page.click("text=Harbour View Garage")
        page.uncheck("#id_guest_charging_enabled")
        page.click("button:has-text('Save access settings')")
        page.wait_for_selector(".flash-success")
        assert not page.is_checked("#id_guest_charging_enabled")
        page.screenshot(path=str(SHOTS / "locations.png"), full_page=True)

        # Sessions with the meter curve, and the dashboard.
        page.click("nav.mainnav >> text=Sessions")
        page.screenshot(path=str(SHOTS / "sessions.png"), full_page=True)
        # The session opens from its start time (the Cost cell links its price breakdown).
        page.locator("table td[data-label=Started] a").last.click()
        page.wait_for_selector("#meter-chart path")
        page.screenshot(path=str(SHOTS / "session-detail.png"), full_page=True)
        page.click("nav.mainnav >> text=Dashboard")
        assert "Chargers online" in page.inner_text("#stats")
        page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
        page.click("nav.mainnav >> text=Chargers")
        page.screenshot(path=str(SHOTS / "chargers.png"), full_page=True)

        # A 390 px wide phone: every main page fits the screen and the navigation stays reachable.
        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        watch_csp(phone, csp_violations)
        _login(phone, base)
        for path in (
            "/",
            "/chargers/",
            "/chargers/WEB-001/",
            "/chargers/WEB-001/logs/",
            "/chargers/WEB-001/proxy/",
            "/tokens/",
            "/locations/",
            "/sessions/",
            "/mobility-providers/",
            "/authorization/roaming/?uid=04",
        ):
            phone.goto(base + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 392, f"{path} is {width}px wide on a 390px phone"
            # The menu is folded behind its button on a phone and opens on a tap.
            assert not phone.locator("nav.mainnav a:has-text('Sessions')").is_visible()
            phone.click("button.menu-toggle")
            assert phone.locator("nav.mainnav a:has-text('Sessions')").is_visible()
            phone.click("nav.mainnav summary:has-text('Cards & roaming')")
            assert phone.locator("nav.mainnav a:has-text('Tokens')").is_visible()
        phone.goto(base + "/chargers/WEB-001/logs/")
        phone.locator("details.log-entry").first.locator("summary").click()
        phone.screenshot(path=str(SHOTS / "phone-charger-logs.png"), full_page=False)
        phone.goto(base + "/")
        phone.screenshot(path=str(SHOTS / "phone-dashboard.png"), full_page=False)
        # Every page above ran under the Content-Security-Policy without a violation.
        assert csp_violations == []
    finally:
        cp.close()
