"""The Help panel when its answer does not come: the server answers 503 (its database busy or out
of reach) or 500, or the network drops the request. The guest reads in plain words that it was
not answered and may send again; never "could not read that" (as if their message were at
fault) nor the browser's own error text ("Failed to fetch")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ChargerFactory, PropertyFactory
from tests.support.test_assistant_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

DATABASE_BUSY = {
    "status": 503,
    "content_type": "application/json",
    "body": '{"detail": "The database is busy or out of reach, so this request did not finish."}',
    "headers": {"Retry-After": "5"},
}


def _charger() -> None:
    seen = timezone.now() - timedelta(hours=3)
    ChargerFactory(
        property=PropertyFactory(name="Harbour Hotel", timezone="UTC"),
        station_id="HB-FAIL-1",
        last_seen_at=seen,
        disconnected_at=seen,
    )


async def test_the_help_panel_says_plainly_when_its_answer_did_not_come(live_server_proc):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    await sync_to_async(_charger)()
    failures = [
        lambda route: route.fulfill(**DATABASE_BUSY),
        lambda route: route.fulfill(status=500, content_type="text/html", body="<h1>500</h1>"),
        lambda route: route.abort("internetdisconnected"),
    ]

    async def fail(route):
        await failures.pop(0)(route)

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        page = await browser.new_page()
        try:
            await page.route("**/api/v1/support/assistant/", fail)
            await page.goto(f"{live_server_proc.url}/s/HB-FAIL-1")
            await page.get_by_role("button", name="Help").first.click()
            panel = page.get_by_role("dialog", name="Support assistant")
            await panel.wait_for()
            replies = panel.locator(".sa-log > .bot")
            for n in range(3):
                await page.fill("#sa-input", "The charger does not start")
                await panel.get_by_role("button", name="Send").click()
                await replies.nth(n).wait_for(timeout=15_000)
            texts = [await replies.nth(n).inner_text() for n in range(3)]
            # Before: "Sorry, I could not read that. Please try again." twice, then the
            # browser's "Failed to fetch".
            for text in texts[:2]:
                assert "could not answer just now" in text and "could not read" not in text
            assert "could not reach us" in texts[2] and "fetch" not in texts[2].lower()
            # The way back works: the next message is answered.
            await page.unroute("**/api/v1/support/assistant/")
            await page.fill("#sa-input", "The charger does not start")
            await panel.get_by_role("button", name="Send").click()
            answered = replies.nth(3)
            await answered.wait_for(timeout=15_000)
            assert await answered.get_attribute("data-topic")
        finally:
            await browser.close()
