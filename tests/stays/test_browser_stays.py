"""Real server, simulated chargers, headless Chromium: a guest's access code starts their cabin's charger
without payment (the decision names the reservation) and is refused at the other cabin's charger; the
host's Network list groups chargers by property and unit (axe-core clean)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.management.simulator import SimulatedCharger
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "stay-host-pass-1"


def _site() -> str:
    from stays.models import Reservation, Unit

    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    garage = PropertyFactory(organization=prop.organization, name="Village Garage")
    cabin1 = Unit.objects.create(property=prop, name="Cabin 1", kind="cabin")
    cabin2 = Unit.objects.create(property=prop, name="Cabin 2", kind="cabin")
    ChargerFactory(property=prop, unit=cabin1, station_id="LAKE-C1", access_mode="private")
    ChargerFactory(property=prop, unit=cabin2, station_id="LAKE-C2", access_mode="private")
    ChargerFactory(property=prop, station_id="LAKE-SHARED")
    ChargerFactory(property=garage, station_id="VILLAGE-1")
    user = UserFactory(username="cabins@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, role="owner", user=user)
    now = timezone.now()
    reservation = Reservation.objects.create(
        property=prop,
        unit=cabin1,
        guest_name="Anna Smith",
        check_in=now - timedelta(hours=20),
        check_out=now + timedelta(days=2),
    )
    return reservation.access_code


def _decisions():
    from authorization.models import AuthorizationDecision

    return list(
        AuthorizationDecision.objects.filter(context="remote_app")
        .order_by("id")
        .values_list("station_id", "reason", "reservation_id", "reservation__guest_name")
    )


async def test_stay_code_starts_own_cabin_refused_at_the_other_and_network_list(live_server_proc):
    from asgiref.sync import sync_to_async
    from playwright.async_api import async_playwright

    from tests.axe import AsyncAxe as Axe

    code = await sync_to_async(_site)()
    url = f"{live_server_proc.ws_url}/ocpp"
    own = SimulatedCharger(url=url, station_id="LAKE-C1", auto_sessions=False)
    other = SimulatedCharger(url=url, station_id="LAKE-C2", auto_sessions=False)
    for sim in (own, other):
        await sim.connect()
        await sim.boot()
    base = live_server_proc.url
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True
            )
            page = await context.new_page()
            # The link from the booking message lists the guest's charger with the code filled in.
            await page.goto(f"{base}/s/stay/{code}/")
            await page.get_by_role("link", name="LAKE-C1").click()
            assert await page.input_value("#id_stay_code") == code
            await page.click("#stay-start")
            await page.wait_for_url("**/s/session/**", timeout=30_000)
            await page.locator("#status", has_text="Charging").wait_for(timeout=20_000)
            assert "RemoteStartTransaction" in [action for action, _ in own.received_calls]

            await page.goto(f"{base}/s/LAKE-C2")
            await page.fill("#id_stay_code", code)
            await page.click("#stay-start")
            message = page.locator("[data-stay-message]")
            await message.wait_for()
            assert (
                "This code is for Cabin 1 and does not start this charger. Your charger: LAKE-C1."
                in (await message.inner_text())
            )
            assert "RemoteStartTransaction" not in [action for action, _ in other.received_calls]
            decisions = await sync_to_async(_decisions)()
            assert (
                decisions[0][:2] == ("LAKE-C1", "accepted_reservation")
                and decisions[0][3] == "Anna Smith"
            )
            assert (
                decisions[-1][:2] == ("LAKE-C2", "reservation_other_unit")
                and decisions[-1][2] == decisions[0][2]
            )

            host = await browser.new_page()
            await host.goto(f"{base}/accounts/login/")
            await host.fill("#id_username", "cabins@example.com")
            await host.fill("#id_password", PASSWORD)
            await host.click("button[type=submit]")
            # The Network list sits in the "Units & stays" menu group (issue 35 item 13).
            await host.locator("summary", has_text="Units & stays").click()
            await host.get_by_role("link", name="Network list").click(timeout=30_000)
            await host.wait_for_url(f"{base}/network/")
            lake = host.locator("section[data-property]").filter(
                has=host.locator("h2", has_text="Lake Cabins")
            )
            units = await lake.locator("h3.network-unit").evaluate_all(
                "els => els.map(e => e.dataset.unit)"
            )
            assert units == ["shared", "Cabin 1", "Cabin 2"]
            for unit, station in (
                ("shared", "LAKE-SHARED"),
                ("Cabin 1", "LAKE-C1"),
                ("Cabin 2", "LAKE-C2"),
            ):
                table = lake.locator(f"h3[data-unit='{unit}'] + .table-wrap")
                assert station in await table.inner_text()
            online = lake.locator("tr[data-station='LAKE-C1'] [data-state]")
            assert (await online.inner_text()).strip() == "Online"
            garage = host.locator("section[data-property]").filter(
                has=host.locator("h2", has_text="Village Garage")
            )
            assert "VILLAGE-1" in await garage.inner_text()
            results = await Axe().run(host)
            assert results.violations_count == 0, results.generate_report()
        finally:
            await browser.close()
            await own.close()
            await other.close()
