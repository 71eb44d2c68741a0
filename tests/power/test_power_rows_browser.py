"""Issue 51 item 2 in Chromium: a host sets the power budget, a time-of-day limit and a circuit
in rows of inputs, then types a building meter reading, from the Power page reached by the main
menu; at 1366 and 390 px axe finds no serious or critical issue and the page fits a phone."""

from __future__ import annotations

from decimal import Decimal

from power.models import Circuit, SiteBudget
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


def test_a_host_sets_the_power_budget_in_rows_and_a_meter_reading(
    live_server_proc,
    host_site,  # noqa: F811
    browser,  # noqa: F811
):
    prop = host_site
    base = live_server_proc.url
    problems: dict = {}
    page = browser.new_context(viewport=DESKTOP).new_page()
    _login(page, base)
    page.click("#mainnav > a:has-text('Power')")
    page.click(f"a[href='/locations/{prop.pk}/power/']")
    page.fill("#id_limit_a", "63")
    page.fill("#sched-0-start", "17:00")
    page.fill("#sched-0-end", "21:00")
    page.fill("#sched-0-limit", "40")
    page.fill("#circ-0-name", "Garage")
    page.fill("#circ-0-limit", "32")
    page.fill("#circ-1-name", "Row B")
    page.fill("#circ-1-limit", "16")
    page.fill("#circ-1-parent", "Garage")
    _check(page, problems, False)
    page.click("#save-power")
    page.wait_for_selector("text=Power budget saved.")
    site = SiteBudget.objects.get(property=prop)
    assert (site.limit_a, site.schedule) == (
        Decimal("63.0"),
        [{"start": "17:00", "end": "21:00", "limit_a": "40"}],
    )
    assert Circuit.objects.get(name="Row B").parent.name == "Garage"
    assert page.input_value("#circ-1-parent") == "Garage"
    # The building meter says 20 A are left for the chargers, for 10 minutes.
    page.fill("#id_available", "20")
    page.fill("#id_minutes", "10")
    page.click("#save-reading")
    page.wait_for_selector("#reading-in-force")
    assert "20.0 A per phase until" in page.inner_text("#reading-in-force")
    _check(page, problems, False)
    page.context.close()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    _login(phone, base)
    phone.goto(f"{base}/locations/{prop.pk}/power/")
    _check(phone, problems, True)
    phone.context.close()
    assert problems == {}, problems
