"""Issue 51 item 6 in real Chromium (390 px phone and 1366 px desktop) against the real server and
a simulated two-port charger: a signed-in driver starts from the account's home by scanning the
charger's QR code (the browser's BarcodeDetector reading the camera), picks the port once, stops
from the history's live page, and reads the receipt under the account's header; where the
browser cannot read QR codes the Station ID field is the way. axe-core finds nothing serious."""

from __future__ import annotations

import asyncio
import re

import pytest

from chargers.management.simulator import SimulatedCharger
from tests.drivers.test_one_tap_browser import EMAIL, PASSWORD, _driver_with_a_saved_card
from tests.guest.test_browser import CHROMIUM_ARGS, axe_clean, phone_page, wait_online
from tests.security.csp_browser import awatch_csp

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


# A camera and a QR reader for a headless browser: getUserMedia answers with a canvas's stream
# and BarcodeDetector "reads" the code printed on the label (what Chrome on a phone does).
FAKE_CAMERA = """
(() => {
  const code = %s;
  window.BarcodeDetector = class {
    constructor(options) { this.formats = (options || {}).formats; }
    static getSupportedFormats() { return Promise.resolve(["qr_code"]); }
    detect(source) {
      window.__scannedFrom = source && source.tagName;
      return Promise.resolve(window.__scans++ < 1 ? [] : [{ rawValue: code, format: "qr_code" }]);
    }
  };
  window.__scans = 0;
  navigator.mediaDevices.getUserMedia = () => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 64;
    canvas.getContext("2d").fillRect(0, 0, 64, 64);
    return Promise.resolve(canvas.captureStream(5));
  };
})();
"""


async def desktop_page(playwright, browser=None):
    """As phone_page (tests/guest/test_browser.py), at 1366 x 768."""
    if browser is None:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
    page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
    page.csp_violations = await awatch_csp(page, [])
    return browser, page


async def _sign_in(page, base: str) -> None:
    await page.goto(f"{base}/driver/account/login/")
    await page.fill("input[name=login]", EMAIL)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main form button[type=submit]")
    await page.wait_for_url(f"{base}/driver/")


async def _no_camera_reader(p, browser, base: str, viewport: str) -> None:
    # A context of its own (no cookies, no fake camera): the same browser, not a second launch.
    _, page = await (phone_page(p, browser) if viewport == "phone" else desktop_page(p, browser))
    try:
        await page.add_init_script("delete window.BarcodeDetector;")
        await _sign_in(page, base)
        # No QR reader in this browser: no scan button, the Station ID field still works.
        assert await page.locator("#scan-start").is_hidden()
        await page.fill("#start-station-id", "SCAN-1")
        await page.click("#start-charging button[type=submit]")
        await page.wait_for_url(f"{base}/s/SCAN-1")
        assert page.csp_violations == []
    finally:
        await page.context.close()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_a_driver_scans_the_qr_code_picks_a_port_once_and_stops_from_history(
    live_server_proc, viewport
):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    await sync_to_async(_driver_with_a_saved_card)("SCAN-1")
    sim = SimulatedCharger(
        url=f"{live_server_proc.ws_url}/ocpp",
        station_id="SCAN-1",
        auto_sessions=False,
        connectors=2,
    )
    await wait_online(sim)
    base = live_server_proc.url
    async with async_playwright() as p:
        browser, page = await (phone_page(p) if viewport == "phone" else desktop_page(p))
        try:
            # The label's code (a link to another site would be refused, never opened).
            await page.add_init_script(FAKE_CAMERA % f'"{base}/s/SCAN-1?c=2"')
            await _sign_in(page, base)
            await axe_clean(page)
            scan = page.locator("#scan-start")
            assert await scan.inner_text() == "Scan the QR code"
            await scan.click()
            await page.wait_for_url(f"{base}/s/SCAN-1", timeout=15_000)
            await axe_clean(page)
            # One port picker: the saved card's form holds both ports, no guest card form.
            assert await page.locator("input[name=connector]").count() == 2
            assert await page.locator("#start-form").count() == 0
            await page.locator("#driver-start input[name=connector][value='2']").check()
            await page.click("#driver-start-btn")
            await page.wait_for_url(re.compile(r"/s/session/[^/]+/$"), timeout=30_000)
            starts = [p for a, p in sim.received_calls if a == "RemoteStartTransaction"]
            assert starts and starts[-1]["connectorId"] == 2
            await page.locator("#state-label", has_text="Charging").wait_for(timeout=15_000)
            await page.goto(f"{base}/driver/sessions/")
            live = page.locator("#sessions li[data-live]", has_text="SCAN-1")
            await live.locator("a.live-link").click()
            await page.wait_for_url(re.compile(r"/s/session/[^/]+/$"))
            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.click("#stop-btn")
            await page.locator("#receipt-link", has_text="View receipt").wait_for(
                state="visible", timeout=20_000
            )
            # The receipt from the history: under the account's header, signed in.
            await page.goto(f"{base}/driver/sessions/")
            await page.locator("#sessions a", has_text="SCAN-1").first.click()
            await page.wait_for_url(re.compile(r"/driver/sessions/\d+/receipt/$"))
            nav = page.locator("nav[aria-label=Account]")
            assert "Sessions" in await nav.inner_text() and "Sign out" in await nav.inner_text()
            await axe_clean(page)
            assert page.csp_violations == []
            await page.context.close()
            await _no_camera_reader(p, browser, base, viewport)
        finally:
            await browser.close()
            await sim.close()
