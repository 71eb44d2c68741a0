"""The dashboard on a 390 px phone, in real Chromium against the real server, with a Needs
attention row whose location and findings are long and hold a serial-number station id (one
unbreakable word): the page never scrolls sideways (such a fact line once set the grid column's
minimum width and widened the page, here to 581 px)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "dashboard-phone-pass-1"


def _host() -> None:
    from chargers.models import Charger

    prop = PropertyFactory(
        name="Harbourside Residences and Conference Centre, North Wing Underground Car Park"
    )
    seen = timezone.now() - timedelta(days=3)
    ChargerFactory(
        property=prop,
        station_id="EVB1A22P4RANORTHWINGUNDERGROUND0000017",
        registration_status=Charger.Registration.ACCEPTED,
        last_seen_at=seen,
        last_boot_at=seen - timedelta(days=1),
        connected_at=seen - timedelta(days=1),
        connection_id="",
    )
    user = UserFactory(username="phone-host@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, role="owner", user=user)


async def test_the_dashboard_fits_a_phone_with_long_findings(live_server_proc):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    await sync_to_async(_host)()
    base = live_server_proc.url
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{base}/accounts/login/")
            await page.fill("#id_username", "phone-host@example.com")
            await page.fill("#id_password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_load_state()
            await page.goto(f"{base}/")
            row = page.locator("tr[data-finding=offline]")
            assert "EVB1A22P4RANORTHWINGUNDERGROUND0000017" in await row.inner_text()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the dashboard scrolls sideways ({width} px)"
        finally:
            await browser.close()
