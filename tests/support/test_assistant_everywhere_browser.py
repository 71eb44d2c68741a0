"""The assistant on driver pages at 390 px (issue 34 item 3) and the Help button that no longer
covers the page (issue 35 item 12), in real Chromium with axe-core."""

import pytest
from allauth.account.models import EmailAddress

from drivers.models import DriverProfile
from support.assistant import situations
from tests.security.csp_browser import awatch_csp
from tests.support.test_assistant_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PASSWORD = "long-pass-9182"


def _driver_with_a_paid_session() -> None:
    from django.contrib.auth import get_user_model

    situations.build("paid_session")  # 1.28 EUR at HV-01, paid with GUEST_EMAIL
    user = get_user_model().objects.create_user(
        username="driver-browser-1", email=situations.GUEST_EMAIL, password=PASSWORD
    )
    EmailAddress.objects.create(
        user=user, email=situations.GUEST_EMAIL, verified=True, primary=True
    )
    DriverProfile.objects.create(user=user)


async def _page_ends_above_the_button(page) -> bool:
    """Whether the page keeps room under its last line for the button's whole footprint, so on any
    page, however long, scrolling to the end shows the last lines above the button."""
    return await page.evaluate(
        """() => {
            const button = document.querySelector('.sa-toggle').getBoundingClientRect();
            const room = parseFloat(getComputedStyle(document.body).paddingBottom);
            return room >= window.innerHeight - button.top;
        }"""
    )


async def test_driver_asks_on_a_phone_and_the_help_button_covers_nothing(live_server_proc):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    from tests.axe import AsyncAxe as Axe

    await sync_to_async(_driver_with_a_paid_session)()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        context = await browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        page = await context.new_page()
        violations = await awatch_csp(page, [])
        try:
            await page.goto(f"{live_server_proc.url}/driver/account/login/")
            toggle = page.get_by_role("button", name="Help")
            await toggle.wait_for()
            # Typing in a page field: the floating button steps aside.
            await page.focus("input[name=login]")
            assert not await toggle.is_visible()
            await page.fill("input[name=login]", situations.GUEST_EMAIL)
            await page.fill("input[name=password]", PASSWORD)
            await page.press("input[name=password]", "Enter")
            await page.wait_for_url(f"{live_server_proc.url}/driver/**")
            await page.goto(f"{live_server_proc.url}/driver/sessions/")
            await toggle.wait_for()
            # The page's last lines can always be scrolled above the button, not under it.
            assert await _page_ends_above_the_button(page)
            await toggle.click()
            panel = page.get_by_role("dialog", name="Support assistant")
            await panel.wait_for()
            await page.fill("#sa-input", "how was my last charge calculated? it was 1.28 EUR")
            await panel.get_by_role("button", name="Send").click()
            answer = panel.locator(".sa-log > .bot").first
            await answer.wait_for(timeout=15_000)
            assert await answer.get_attribute("data-topic") == "cost_breakdown"
            text = await answer.inner_text()
            # Their own session, found from their account's email: the lines, not "give me it".
            assert "This session cost 1.28 EUR" in text and "Connection fee" in text
            # Advice first: the answer's first line is in view at the top of the log.
            top = await page.evaluate(
                """() => {
                    const log = document.querySelector('.sa-log');
                    const bot = log.querySelector('.bot');
                    const l = log.getBoundingClientRect(), b = bot.getBoundingClientRect();
                    return b.top >= l.top - 1 && b.top < l.bottom;
                }"""
            )
            assert top
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            results = await Axe().run(page)
            assert results.violations_count == 0, results.generate_report()
            assert violations == []
        finally:
            await browser.close()
