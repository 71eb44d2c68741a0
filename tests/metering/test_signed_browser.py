"""The guest receipt of a signed session in headless Chromium against the real server: it says
"Signed by the meter: verified" and the transparency download gives both OCMF records and the
meter's key; axe-core finds no serious or critical accessibility problem, and no CSP violation."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from chargers.management.ocmf_meter import generate_key, public_key_hex
from guest.models import GuestSession
from metering.services import meter_key_put
from tests.factories import ChargerFactory, PropertyFactory
from tests.guest.test_browser import axe_clean, phone_page
from tests.metering.test_signed_pages import _signed_session

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_guest_receipt_shows_the_verified_signature_and_the_download(live_server_proc):
    from playwright.async_api import async_playwright

    prop = PropertyFactory(name="Harbour Hotel", timezone="Europe/Berlin")
    charger = ChargerFactory(property=prop, station_id="EICH-B1")
    key = generate_key()
    meter_key_put(charger=charger, meter_serial="SIM-EICH-B1-1", public_key=public_key_hex(key))
    session = _signed_session(charger, key, transaction_id=21)
    gs = GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.FINISHED,
        charging_session=session,
    )

    async def scenario():
        async with async_playwright() as playwright:
            browser, page = await phone_page(playwright)
            try:
                await page.goto(f"{live_server_proc.url}/s/receipt/{gs.key}/")
                signed = page.locator("#signed-meter")
                await signed.get_by_text("Signed by the meter: verified").wait_for()
                link = page.locator("#transparency-download")
                assert await link.inner_text() == "Download the transparency data"
                await axe_clean(page)
                async with page.expect_download() as download_info:
                    await link.click()
                download = await download_info.value
                path = await download.path()
                with open(path, "rb") as file:
                    content = file.read()
                assert download.suggested_filename == f"EICH-B1-session-{session.pk}-signed.xml"
                assert page.csp_violations == []
                return content
            finally:
                await browser.close()

    content = asyncio.run(scenario())
    values = ET.fromstring(content).findall("value")
    assert [v.get("context") for v in values] == ["Transaction.Begin", "Transaction.End"]
    assert all(v.find("signedData").text.startswith("OCMF|") for v in values)
    assert {v.find("publicKey").text for v in values} == {public_key_hex(key)}
