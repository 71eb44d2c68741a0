"""Issue 35 item 19 in real Chromium on a 390 px phone against the real server and a simulated
charger: a signed-in driver with a saved card starts from the charger's page in one tap, the
charger starts, and the session is in the driver's history; axe-core finds nothing serious."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.management.simulator import SimulatedCharger
from tests.factories import ChargerFactory, PropertyFactory
from tests.guest.test_browser import axe_clean, phone_page, wait_online

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PASSWORD = "long-pass-9182"
EMAIL = "tap.driver@example.com"


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


def _driver_with_a_saved_card(station_id: str) -> None:
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    from billing.models import Rate, SandboxCustomer, SandboxPaymentMethod
    from drivers.models import DriverProfile, SavedCard

    prop = PropertyFactory(name="Harbour Hotel", currency="EUR", timezone="Europe/Amsterdam")
    ChargerFactory(property=prop, station_id=station_id, name="Lot A")
    Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.40"),
    )
    user = get_user_model().objects.create_user(
        username="driver-tap0001", email=EMAIL, password=PASSWORD
    )
    EmailAddress.objects.create(user=user, email=EMAIL, verified=True, primary=True)
    customer = SandboxCustomer.objects.create(id="cus_sbx_tap0001", email=EMAIL)
    SandboxPaymentMethod.objects.create(
        id="pm_sbx_tap0001", customer=customer, test_method="pm_card_visa", last4="4242"
    )
    profile = DriverProfile.objects.create(user=user, customer_ref=customer.id)
    SavedCard.objects.create(
        profile=profile,
        reference="pm_sbx_tap0001",
        brand="visa",
        last4="4242",
        exp_month=11,
        exp_year=2030,
        is_default=True,
    )


async def test_a_driver_starts_with_the_saved_card_in_one_tap(live_server_proc):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    await sync_to_async(_driver_with_a_saved_card)("TAP-1")
    sim = SimulatedCharger(
        url=f"{live_server_proc.ws_url}/ocpp", station_id="TAP-1", auto_sessions=False
    )
    await wait_online(sim)
    base = live_server_proc.url
    async with async_playwright() as p:
        browser, page = await phone_page(p)
        try:
            await page.goto(f"{base}/driver/account/login/")
            await page.fill("input[name=login]", EMAIL)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("main form button[type=submit]")
            await page.wait_for_url(f"{base}/driver/")
            assert "driver-tap0001" not in await page.content()
            # Issue 51 item 6: "Start charging" on the account's home finds the charger by its
            # Station ID.
            await axe_clean(page)
            await page.fill("#start-station-id", "TAP-1")
            await page.click("#start-charging button[type=submit]")
            await page.wait_for_url(f"{base}/s/TAP-1")
            await axe_clean(page)
            button = page.locator("#driver-start-btn")
            assert await button.inner_text() == "Start charging with Visa ending 4242"
            box = await button.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 844  # on the first screen
            await button.click()  # the one tap: no card form, no second payment
            await page.wait_for_url(re.compile(r"/s/session/[^/]+/$"), timeout=30_000)
            assert "RemoteStartTransaction" in [action for action, _ in sim.received_calls]
            await page.locator("#state-label", has_text="Charging").wait_for(timeout=15_000)
            await axe_clean(page)
            await page.goto(f"{base}/driver/sessions/")
            assert "TAP-1" in await page.inner_text("main")
            await axe_clean(page)
            # Issue 51 item 6: the session in progress links from the history to its live page,
            # where the driver stops it.
            live = page.locator("#sessions li[data-live]", has_text="TAP-1")
            assert "Charging now" in await live.inner_text()
            await live.locator("a.live-link").click()
            await page.wait_for_url(re.compile(r"/s/session/[^/]+/$"))
            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.click("#stop-btn")
            await page.locator("#receipt-link", has_text="View receipt").wait_for(
                state="visible", timeout=20_000
            )
            assert "RemoteStopTransaction" in [action for action, _ in sim.received_calls]
            await page.goto(f"{base}/driver/sessions/")
            assert await page.locator("#sessions li[data-live]").count() == 0
            assert page.csp_violations == []
        finally:
            await browser.close()
            await sim.close()
