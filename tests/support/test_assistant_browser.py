"""A guest on a 390 px phone opens the assistant from an error prompt, gets a live answer, hands off."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ChargerFactory, PropertyFactory
from tests.security.csp_browser import awatch_csp

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _offline_charger() -> None:
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    seen = timezone.now() - timedelta(hours=3)
    ChargerFactory(
        property=prop,
        station_id="HB-OFF-1",
        last_seen_at=seen,
        last_heartbeat_at=seen,
        disconnected_at=seen,
    )


async def test_guest_opens_assistant_from_prompt_gets_live_facts_and_a_ticket(live_server_proc):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    from support.models import Ticket
    from tests.axe import AsyncAxe as Axe

    await sync_to_async(_offline_charger)()
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
            await page.goto(f"{live_server_proc.url}/s/HB-OFF-1")
            prompt = page.locator("[data-prompt]")
            await prompt.get_by_text("Charger is Out of Order").first.wait_for()
            await prompt.get_by_role("button", name="Ask the assistant about this").click()
            panel = page.get_by_role("dialog", name="Support assistant")
            await panel.wait_for()
            assert "Charger is Out of Order" in await page.input_value("#sa-input")
            await panel.get_by_role("button", name="Send").click()
            first = panel.locator(".sa-log > .bot").first
            await first.wait_for(timeout=15_000)
            assert await first.get_attribute("data-topic") in (
                "charger_offline",
                "guest_start_error",
            )
            text = await first.inner_text()
            # A guest hears what the guest page shows (issue 47 item 6): no times, no heartbeat.
            assert "Charger HB-OFF-1 is out of order: it is offline right now" in text
            assert "heartbeat" not in text
            await page.fill("#sa-input", "that didn't help")
            await page.fill("#sa-email", "guest@example.com")
            await panel.get_by_role("button", name="Send").click()
            ticket = panel.locator("[data-ticket]")
            await ticket.wait_for(timeout=15_000)
            ticket_id = int(await ticket.get_attribute("data-ticket"))
            row = await sync_to_async(Ticket.objects.get)(pk=ticket_id)
            assert row.email == "guest@example.com" and row.station_id == "HB-OFF-1"
            assert row.bundle["charger"]["online"] is False
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            # The whole page with the panel open and the hand-off shown: the guest page, its error
            # prompt and the assistant together.
            results = await Axe().run(page)
            assert results.violations_count == 0, results.generate_report()
            reply = await panel.locator(".sa-log > .bot").last.inner_text()
            # The guest is told the ticket by the reference the emails quote ("request #…").
            assert (
                f"ticket #{row.reference}" in reply and f"Ticket #{row.reference} is open." in reply
            )
            assert violations == []
        finally:
            await browser.close()
