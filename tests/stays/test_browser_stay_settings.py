"""Real server, headless Chromium, desktop and a 390 px phone: a host edits the stay policy, sees a
calendar feed's error in words and a PMS integration's sync page; axe-core finds no serious or
critical violation on either page."""

import pytest
from django.utils import timezone

from tests.factories import MembershipFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "stay-settings-pass-1"


def _site() -> tuple[int, int]:
    from stays.models import CalendarFeed, Listing, PmsIntegration, Unit

    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    cabin = Unit.objects.create(property=prop, name="Cabin 1", kind="cabin")
    CalendarFeed.objects.create(
        property=prop,
        unit=cabin,
        name="Airbnb – Cabin 1",
        url="https://example.com/a.ics",
        state="error",
        last_synced_at=timezone.now(),
        last_error="The calendar server answered 404: the calendar no longer exists at this URL.",
    )
    integration = PmsIntegration.objects.create(
        organization=prop.organization,
        vendor="guesty",
        state="error",
        last_synced_at=timezone.now(),
        listings_count=1,
        last_error="Guesty returned 401: the API credentials were revoked or are wrong.",
    )
    Listing.objects.create(integration=integration, external_id="L-1", name="Lake cabin 1")
    user = UserFactory(username="stays@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, role="manager", user=user)
    return prop.pk, integration.pk


def _policy():
    from stays.models import StayPolicy

    policy = StayPolicy.objects.get()
    return policy.charging, str(policy.kwh_cap), policy.grace_before_minutes


def _serious(results) -> list:
    return [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


@pytest.mark.parametrize(
    "viewport",
    [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
    ids=["desktop", "phone"],
)
async def test_host_edits_the_stay_policy_and_reads_sync_errors(live_server_proc, viewport):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    from tests.axe import AsyncAxe as Axe

    prop_id, integration_id = await sync_to_async(_site)()
    base = live_server_proc.url
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport=viewport)
            await page.goto(f"{base}/accounts/login/")
            await page.fill("#id_username", "stays@example.com")
            await page.fill("#id_password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_load_state()
            await page.goto(f"{base}/stays/properties/")
            card = page.locator(f"#property-{prop_id}")
            assert (
                "The calendar server answered 404"
                in await card.locator("[data-error]").inner_text()
            )
            assert not _serious(await Axe().run(page))
            await card.get_by_label("Included in the stay").check()
            await card.get_by_label("kWh included per stay").fill("30")
            await card.get_by_label("Grace before check-in (minutes)").fill("45")
            await card.get_by_role("button", name="Save stay policy").click()
            await page.locator("[role=status]", has_text="stay policy saved").wait_for()
            assert await sync_to_async(_policy)() == ("included", "30.00", 45)

            await page.get_by_role("link", name="PMS integrations").click()
            await page.get_by_role("link", name="Guesty").click()
            await page.wait_for_url(f"{base}/stays/integrations/{integration_id}/")
            assert "Guesty returned 401" in await page.locator("[data-error]").inner_text()
            assert await page.get_by_role("button", name="Sync now").is_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"] + 1, "the page scrolls sideways"
            assert not _serious(await Axe().run(page))
        finally:
            await browser.close()
