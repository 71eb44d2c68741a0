"""Real server, headless Chromium, desktop and a 390 px phone: a host opens a location's Power page,
sees each connector's allocation and draw and the chart, lowers the budget with the form (the
newest session waits), and watches the live card follow a building meter's lower reading
without reloading; axe-core finds no serious or critical violation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "power-page-pass-1"


def _site() -> int:
    from chargers.models import ChargingSession, MeterValue
    from power import services
    from power.models import SiteBudget

    prop = PropertyFactory(name="Harbour Flats", timezone="Europe/Amsterdam")
    SiteBudget.objects.create(property=prop, limit_a=Decimal(63), phases=3)
    now = timezone.now()
    for i in range(3):
        charger = ChargerFactory(property=prop, station_id=f"FLAT-{i + 1}")
        session = ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=i + 1,
            id_tag="TAG",
            started_at=now - timedelta(minutes=30 - i),
            meter_start_wh=0,
        )
        MeterValue.objects.create(
            charger=charger,
            session=session,
            connector_id=1,
            timestamp=now,
            measurand="Current.Import",
            unit="A",
            value=Decimal("15.5"),
        )
    services.recompute(prop.pk)
    user = UserFactory(username="power@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, role="manager", user=user)
    return prop.pk


def _limits() -> dict[str, tuple[str, bool]]:
    from power.models import ConnectorAllocation

    return {
        a.charger.station_id: (str(a.limit_a), a.waiting)
        for a in ConnectorAllocation.objects.select_related("charger")
    }


def _meter_says(prop_id: int, amps: str) -> None:
    from power import services

    services.live_reading_record(property_id=prop_id, limit_a=Decimal(amps))


def _serious(results) -> list:
    return [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


@pytest.mark.parametrize(
    "viewport",
    [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
    ids=["desktop", "phone"],
)
async def test_host_sees_the_allocation_live_and_lowers_the_budget(live_server_proc, viewport):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    from tests.axe import AsyncAxe as Axe

    prop_id = await sync_to_async(_site)()
    base = live_server_proc.url
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport=viewport)
            # The page's timers on a clock the test moves: its 5 s refresh runs when told.
            await page.clock.install()
            await page.goto(f"{base}/accounts/login/")
            await page.fill("#id_username", "power@example.com")
            await page.fill("#id_password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_load_state()
            await page.goto(f"{base}/locations/{prop_id}/")
            await page.locator("#power-link").click()
            await page.wait_for_url(f"{base}/locations/{prop_id}/power/")
            table = page.locator("#power-allocations")
            for n in (1, 2, 3):
                row = table.locator("tr", has_text=f"FLAT-{n}/1")
                assert "21.0 A" in await row.locator(".limit").inner_text()
                assert "15.5 A" in await row.inner_text()
            assert await page.locator("#power-chart").is_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"] + 1, "the page scrolls sideways"
            assert not _serious(await Axe().run(page))

            # 12 A: two sessions at their 6 A minimum, the newest waits its turn.
            await page.get_by_label("Budget (amperes per phase)").fill("12")
            await page.get_by_role("button", name="Save power budget").click()
            await page.locator("[role=status]", has_text="Power budget saved").wait_for()
            row = page.locator("#power-allocations tr", has_text="FLAT-3/1")
            assert "Waiting for power, you are next" in await row.inner_text()
            assert await sync_to_async(_limits)() == {
                "FLAT-1": ("6.0", False),
                "FLAT-2": ("6.0", False),
                "FLAT-3": ("0.0", True),
            }

            # A building meter says only 6 A are left: the open page follows at its 5 s refresh,
            # and the next session joins the queue.
            await sync_to_async(_meter_says)(prop_id, "6")
            await page.clock.fast_forward(5_000)  # the refresh is due
            await page.locator("#power-live", has_text="live reading").wait_for(timeout=15000)
            rows = page.locator("#power-allocations tr")
            assert (
                "Waiting for power, you are next"
                in await rows.filter(has_text="FLAT-2/1").inner_text()
            )
            assert (
                "Waiting for power: 1 ahead of you"
                in await rows.filter(has_text="FLAT-3/1").inner_text()
            )
            assert not _serious(await Axe().run(page))
        finally:
            await browser.close()
