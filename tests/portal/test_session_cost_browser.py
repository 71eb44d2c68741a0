"""Issue 51 item 3 in real Chromium (390 px phone and 1366 px desktop) against the real server:
the host's Sessions page shows each session's cost (a session still charging: its cost so far),
duration and who paid, the CSV carries the same, and axe-core finds nothing serious."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory
from tests.portal.test_every_page_browser import CHROMIUM_ARGS, axe_problems
from tests.security.csp_browser import watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PASSWORD = "secret-pass-5150"


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


def _sessions() -> None:
    from billing.models import Rate
    from chargers.models import ChargingSession, MeterValue

    prop = PropertyFactory(name="Harbour Hotel", currency="EUR", timezone="Europe/Amsterdam")
    charger = ChargerFactory(property=prop, station_id="COST-1")
    member = MembershipFactory(organization=prop.organization, role="viewer")
    member.user.username = "costs@example.com"
    member.user.set_password(PASSWORD)
    member.user.save()
    card = TokenFactory(uid="04C0FFEE", organization=prop.organization, label="Van 3")
    now = timezone.now()
    Rate.objects.create(
        property=prop,
        valid_from=now - timedelta(days=1),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.50"),
    )
    running = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=51001,
        id_tag=card.uid,
        token=card,
        started_at=now - timedelta(minutes=45),
        meter_start_wh=10000,
        status="active",
    )
    MeterValue.objects.create(
        charger=charger,
        session=running,
        connector_id=1,
        timestamp=now - timedelta(minutes=5),
        unit="Wh",
        value=Decimal(14000),
    )


@pytest.mark.parametrize(
    "viewport", [{"width": 390, "height": 844}, {"width": 1366, "height": 768}], ids=["390", "1366"]
)
def test_the_sessions_page_shows_a_charging_sessions_cost_so_far(live_server_proc, viewport):
    from playwright.sync_api import sync_playwright

    _sessions()
    base = live_server_proc.url
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        phone = viewport["width"] < 800
        page = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone).new_page()
        violations = watch_csp(page, [])
        try:
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", "costs@example.com")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/sessions/")
            row = page.locator("tbody tr", has_text="COST-1")
            # 1.00 + 4 kWh so far x 0.50 = 3.00 EUR, the receipt's function on the last reading.
            cost = row.locator("td[data-label=Cost]")
            assert cost.inner_text().split() == ["3.00", "EUR", "so", "far"]
            assert row.locator("td[data-label='Paid by']").inner_text() == "Your card"
            assert "so far" in row.locator("td[data-label=Duration]").inner_text()
            assert cost.locator("a").is_visible()
            assert axe_problems(page) == []
            csv = page.request.get(f"{base}/sessions/export.csv").text()
            header, line = csv.splitlines()[:2]
            assert header.endswith("cost,currency,duration_s,payer")
            assert line.endswith("3.00,EUR,,Your card")
            assert violations == []
        finally:
            browser.close()
