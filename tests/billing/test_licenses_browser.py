"""Issue 51 item 1 in Chromium, as a new host: add a charger, copy its one-time password from the
setup card, follow "Activate the license" and activate it within the plan, so the charger can
charge without contacting support; on a phone, ask support for another charger's license in one
click and see the request on the dashboard. axe finds no serious or critical issue on the pages."""

from __future__ import annotations

from billing.models import LedgerTransaction
from chargers.models import Charger
from support.models import Ticket
from tests.factories import ChargerFactory
from tests.portal.test_issue35_browser import (  # noqa: F401 (fixtures)
    DESKTOP,
    PHONE,
    _check,
    _fast_passwords,
    _login,
    _orm_beside_playwright,
    browser,
    host_site,  # noqa: F811
)


def test_a_new_charger_charges_after_the_host_activates_its_license(
    live_server_proc,
    host_site,  # noqa: F811
    browser,  # noqa: F811
):
    prop = host_site
    base = live_server_proc.url
    problems: dict = {}
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    _login(page, base)
    page.goto(f"{base}/locations/{prop.pk}/")
    page.click("a:has-text('Add charger')")
    page.fill("#id_station_id", "DUNE-NEW")
    page.click("button:has-text('Add charger')")
    page.wait_for_selector("#ocpp-password")
    _check(page, problems, False)
    # The one-time password is copied with one click.
    password = page.inner_text("#ocpp-password").strip()
    page.click("#copy-password")
    page.wait_for_selector("#copy-status:has-text('Password copied.')")
    assert page.evaluate("navigator.clipboard.readText()") == password
    # The card says why it cannot charge yet and links the fix.
    assert "no session starts until its license is active" in page.inner_text("article")
    page.click("#license-link")
    page.wait_for_url(f"{base}/support/licenses/DUNE-NEW/")
    assert "60.00 EUR for 12 months" in page.inner_text("#license-state")
    _check(page, problems, False)
    page.click("#license-activate")
    page.wait_for_selector("text=DUNE-NEW can charge now")
    assert "Active" in page.inner_text("[data-field=license]")
    _check(page, problems, False)
    charger = Charger.objects.get(station_id="DUNE-NEW")
    assert charger.license_active()
    assert LedgerTransaction.objects.filter(kind="license_fee").count() == 1
    context.close()
    assert problems == {}, problems


def test_on_a_phone_the_host_asks_support_in_one_click(
    live_server_proc,
    host_site,  # noqa: F811
    browser,  # noqa: F811
):
    prop = host_site
    ChargerFactory(property=prop, station_id="DUNE-2", license_valid_until=None)
    base = live_server_proc.url
    problems: dict = {}
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    _login(page, base)
    row = page.locator("tr[data-cannot-charge=license]", has_text="DUNE-2")
    assert "Cannot charge" in row.inner_text()
    _check(page, problems, True)
    row.locator("a:has-text('Activate the license')").click()
    page.wait_for_url(f"{base}/support/licenses/DUNE-2/")
    _check(page, problems, True)
    page.click("#license-request")
    page.wait_for_selector("#license-requested")
    ticket = Ticket.objects.get(topic=Ticket.Topic.LICENSE)
    assert ticket.charger.station_id == "DUNE-2"
    _check(page, problems, True)
    page.goto(f"{base}/")
    assert f"Support asked (#{ticket.reference})" in page.inner_text(
        "tr[data-cannot-charge=license]"
    )
    context.close()
    assert problems == {}, problems
