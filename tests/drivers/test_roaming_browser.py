"""Issue 55 in real Chromium (390 px phone, 1366 px desktop) against the real server: a driver
finds a partner CPO's charger from the account's header, reads our price, starts it (an
independent CPO over real HTTP gets START_SESSION) and sees the CPO's answer arrive on the
activity page without reloading it. axe-core finds nothing serious; no CSP violation."""

from __future__ import annotations

import pytest

from tests.conftest import start_live_server, stop_live_server
from tests.drivers.test_start_from_account_browser import desktop_page
from tests.guest.test_browser import axe_clean, phone_page
from tests.roaming.cpo_stub import CpoStub
from tests.roaming.test_emsp_tokens import CPO_TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EMAIL, PASSWORD = "roam.browser@example.com", "long-pass-9182"


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


def _seed(stub: CpoStub) -> int:
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    from billing.models import SandboxCustomer, SandboxPaymentMethod
    from drivers.models import DriverProfile, SavedCard
    from roaming import emsp_driving
    from tests.drivers.test_roaming import partner_network
    from tests.factories import OrganizationFactory
    from tests.roaming.test_emsp_tokens import cpo_partner, with_identity

    org = OrganizationFactory()
    emsp_driving.driver_accounts_set(identity_id=with_identity(org).pk)
    partner = cpo_partner(org, endpoints={"commands": {"RECEIVER": f"{stub.base}/2.2.1/commands"}})
    location = partner_network(partner)
    user = get_user_model().objects.create_user(
        username="driver-roam01", email=EMAIL, password=PASSWORD
    )
    EmailAddress.objects.create(user=user, email=EMAIL, verified=True, primary=True)
    customer = SandboxCustomer.objects.create(id="cus_sbx_roam01", email=EMAIL)
    SandboxPaymentMethod.objects.create(
        id="pm_sbx_roam01", customer=customer, test_method="pm_card_visa", last4="4242"
    )
    profile = DriverProfile.objects.create(user=user, customer_ref=customer.id)
    SavedCard.objects.create(
        profile=profile,
        reference="pm_sbx_roam01",
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2030,
        is_default=True,
    )
    return location.pk


async def _sign_in(page, base: str) -> None:
    await page.goto(f"{base}/driver/account/login/")
    await page.fill("input[name=login]", EMAIL)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main form button[type=submit]")
    await page.wait_for_url(f"{base}/driver/")


@pytest.fixture
def stub():
    stub = CpoStub()
    stub.emsp_token = "our-token-at-cpo"  # we call it with this (cpo_partner's outgoing token)
    stub.our_token_at_emsp = CPO_TOKEN  # it calls us with this
    yield stub
    stub.close()


@pytest.fixture
def server(transactional_db, tmp_path):
    """The real server, allowed to call the stub on loopback (started and stopped outside the
    test's event loop: both touch the database connections)."""
    server = start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal", MSP_URL_ALLOWLIST="127.0.0.1")
    yield server
    stop_live_server(server)


async def test_a_driver_finds_a_partner_charger_starts_it_and_sees_the_answer_arrive(stub, server):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    location_pk = await sync_to_async(_seed)(stub)
    base = server.url
    async with async_playwright() as p:
        browser, page = await phone_page(p)
        try:
            # The page's timers on a clock the test moves: its 10 s refresh runs when told.
            await page.clock.install()
            await _sign_in(page, base)
            await page.click("nav[aria-label=Account] a:has-text('Other networks')")
            await page.wait_for_url(f"{base}/driver/networks/")
            await axe_clean(page)
            await page.click(f"a[href='/driver/networks/{location_pk}/']")
            text = await page.locator("main").inner_text()
            assert "EUR 0.399 per kWh" in text and "EUR 1.33 per session" in text
            await axe_clean(page)
            await page.click("form button:has-text('Start charging')")
            await page.wait_for_url(f"{base}/driver/networks/activity/")
            now = page.locator("#roaming-now")
            assert "Waiting for the charger to answer" in await now.inner_text()
            await axe_clean(page)
            start = await sync_to_async(stub.wait_for_command)("START_SESSION", timeout=10)
            assert start["token"]["type"] == "APP_USER"
            status, answer = await sync_to_async(stub.post_result)(
                start["response_url"], "ACCEPTED"
            )
            assert (status, answer["status_code"]) == (200, 1000)
            # The page fetches itself again (every 10 s) and replaces the section in place.
            await page.clock.fast_forward(10_000)
            await now.get_by_text("plug in if you have not").wait_for(timeout=30_000)
            assert page.csp_violations == []
            await page.context.close()
            # A context of its own (signed out, no cookies) in the same browser.
            _, page = await desktop_page(p, browser)
            await _sign_in(page, base)
            for path in ("/driver/networks/", f"/driver/networks/{location_pk}/"):
                await page.goto(f"{base}{path}")
                await axe_clean(page)
            await page.goto(f"{base}/driver/networks/activity/")
            await axe_clean(page)
            assert page.csp_violations == []
        finally:
            await browser.close()
