"""Issue 35 "Done when", from outside in real Chromium against the real server, as a host at
1366 px and on a 390 px phone: the menu is one line; a host creates a unit and moves a charger
into it, enters the location's address and coordinates and sees it published on roaming, changes
the MSP timeout and a price, without the admin; times carry the location's zone; the Proxy tab
fits a phone; axe-core finds no serious or critical problem on any page visited."""

from __future__ import annotations

import pytest
from django.utils import timezone

from authorization.models import MobilityServiceProvider
from billing.models import Rate
from chargers.models import Charger, Connector
from chargers.proxy.models import Backoffice
from roaming.models import LocationProfile
from stays.models import Unit
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "secret-pass-123"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """The test reads rows between clicks; Playwright's sync API runs an event loop in this
    thread, which Django would take for an async context (the queries are plain sync ones)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def host_site(transactional_db):
    prop = PropertyFactory(name="Dune Cottages", address="", timezone="Europe/Amsterdam")
    user = UserFactory(username="dune@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, user=user, role="owner")
    charger = ChargerFactory(property=prop, station_id="DUNE-1", name="Car park")
    for number in (1, 2):
        Connector.objects.create(charger=charger, connector_id=number, status="Available")
    MobilityServiceProvider.objects.create(
        organization=prop.organization,
        name="PlugSurfing",
        country_code="NL",
        party_id="PLS",
        live_validation_url="https://msp.example/ocpi/2.2.1/tokens",
    )
    Backoffice.objects.create(
        charger=charger,
        name="Installer's very long named central system",
        url="wss://csms.installer-backoffice.example.com/ocpp/v16/endpoint",
        status="disconnected",
        disconnected_at=timezone.now(),
        last_error="The backoffice refused the connection: nothing answers at that address.",
    )
    return prop


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


def _axe(page) -> list:
    from tests.axe import Axe

    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _login(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "dune@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _check(page, problems: dict, phone: bool) -> None:
    found = _axe(page)
    if phone:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"] + 2:
            found.append(f"{width}px wide on a phone")
    if found:
        problems[page.url] = found


def test_a_host_runs_the_site_without_support(live_server_proc, host_site, browser):
    prop = host_site
    base = live_server_proc.url
    page = browser.new_context(viewport=DESKTOP).new_page()
    problems: dict = {}
    _login(page, base)

    # 13: the menu is one line at 1366 px; its groups open on a click.
    tops = page.evaluate(
        "Array.from(document.querySelectorAll('#mainnav > a, #mainnav > details > summary'))"
        ".map(e => Math.round(e.getBoundingClientRect().top))"
    )
    assert len(set(tops)) == 1, tops
    page.click("nav.mainnav summary:has-text('Units & stays')")
    page.click("nav.mainnav >> text=Network list")
    _check(page, problems, False)

    # 1: a unit created here is offered under Move to; the charger moves into it.
    page.fill(f"#unit{prop.pk}_name", "Cottage 3")
    page.select_option(f"#unit{prop.pk}_kind", "cabin")
    page.click("form[data-form=unit] button")
    page.wait_for_selector("text=Dune Cottages – Cottage 3 added")
    cottage = Unit.objects.get(property=prop, name="Cottage 3")
    page.select_option("select[name=place]", f"{prop.pk}:{cottage.pk}")
    page.click("tr[data-station=DUNE-1] button:has-text('Move')")
    page.wait_for_selector("text=DUNE-1 now belongs to Dune Cottages – Cottage 3")
    assert Charger.objects.get(station_id="DUNE-1").unit_id == cottage.pk

    # 2: the roaming page says what is missing and links to where to enter it.
    page.click("nav.mainnav summary:has-text('Cards & roaming')")
    page.click("nav.mainnav >> text=Roaming partners")
    row = page.locator("#location-table tr", has_text="Dune Cottages")
    assert "missing: city, country, coordinates" in row.inner_text()
    _check(page, problems, False)
    row.locator("a.fix-link").click()
    page.fill("#id_loc-address", "Duinweg 12")
    page.fill("#id_loc-postal_code", "2042 AB")
    page.fill("#id_loc-city", "Zandvoort")
    page.fill("#id_loc-country", "nld")
    page.fill("#id_loc-latitude", "52.3712")
    page.fill("#id_loc-longitude", "4.5331")
    page.fill("#id_loc-operator_name", "Dune Cottages BV")
    _check(page, problems, False)
    page.click("button:has-text('Save address and roaming data')")
    page.wait_for_selector("text=1 charger(s) published to roaming partners")
    assert LocationProfile.objects.get(property=prop).country == "NLD"
    page.goto(f"{base}/roaming/partners/")
    row = page.locator("#location-table tr", has_text="Dune Cottages")
    assert "complete" in row.inner_text() and "yes" in row.inner_text()

    # 3: the MSP live-validation timeout, 15 s by default.
    page.click("nav.mainnav summary:has-text('Cards & roaming')")
    page.click("nav.mainnav >> text=Mobility Providers")
    page.click("#msp-table a:has-text('Change')")
    assert page.input_value("#id_timeout_s") == "15"
    _check(page, problems, False)
    page.fill("#id_timeout_s", "8")
    page.click("#msp-validation-form button[type=submit]")
    page.wait_for_selector("text=PlugSurfing: wait 8 s, then reject the card.")

    # 4: Prices from the menu; dates typed as the page shows them, in the location's time.
    page.click("nav.mainnav >> text=Prices")
    _check(page, problems, False)
    page.click("#prices a:has-text('Change prices')")
    assert "Energy (EUR per kWh)" in page.inner_text("#rate-form")
    page.fill("#id_valid_from_0", "1 Dec 2026")
    page.fill("#id_valid_from_1", "00:00")
    page.fill("#id_energy_price_per_kwh", "0.39")
    _check(page, problems, False)
    page.click("#rate-form button.primary[type=submit]")  # Save price (beside Review changes)
    page.wait_for_selector("text=Rate saved")
    rate = Rate.objects.get(property=prop)
    assert rate.valid_from.isoformat() == "2026-11-30T23:00:00+00:00"  # midnight in Amsterdam
    assert "1 Dec 2026, 00:00 CET" in page.inner_text("#rates")
    assert page.locator("input[type=date], input[type=datetime-local]").count() == 0

    for path in ("/", "/sessions/", "/locations/", f"/locations/{prop.pk}/", "/billing/prices/"):
        page.goto(base + path)
        _check(page, problems, False)
    assert problems == {}, problems


def test_the_host_pages_fit_a_phone(live_server_proc, host_site, browser):
    prop = host_site
    base = live_server_proc.url
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    problems: dict = {}
    _login(page, base)
    for path in (
        "/network/",
        "/billing/prices/",
        f"/billing/properties/{prop.pk}/rates/",
        f"/roaming/locations/{prop.pk}/",
        f"/mobility-providers/{MobilityServiceProvider.objects.get().pk}/validation/",
        "/authorization/roaming/?uid=04",
        "/chargers/DUNE-1/proxy/",
    ):
        page.goto(base + path)
        _check(page, problems, True)
    assert problems == {}, problems

    # 11: on the Proxy tab the badge stays a pill, the address and error wrap, Remove is on screen.
    row = page.locator("#proxy-table tr", has_text="Installer's")
    badge = row.locator(".badge-bad").bounding_box()
    assert badge["height"] < 30 and badge["width"] < 160, badge
    for text in ("ocpp/v16/endpoint", "nothing answers at that address"):
        box = row.locator(f"text={text}").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (text, box)
    remove = row.locator("button:has-text('Remove')").bounding_box()
    assert remove["x"] >= 0 and remove["x"] + remove["width"] <= PHONE["width"], remove
    context.close()
