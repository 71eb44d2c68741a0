"""Issue 51 item 2 in Chromium: a host owner opens Uptime › Alerts from the main menu, adds an
alert (email and first aid) with a mistake first, reads the error in plain words beside the
field, fixes it, and changes the alert; the pages fit a 390 px phone and axe finds no serious or
critical issue."""

from __future__ import annotations

from reliability.models import AlertRule
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


def test_a_host_sets_an_alert_from_the_portal(
    live_server_proc,
    host_site,  # noqa: F811
    browser,  # noqa: F811
):
    base = live_server_proc.url
    problems: dict = {}
    page = browser.new_context(viewport=DESKTOP).new_page()
    _login(page, base)
    page.click("#mainnav > a:has-text('Uptime')")
    page.click("#alerts-link a")
    page.wait_for_url(f"{base}/uptime/alerts/")
    _check(page, problems, False)
    page.select_option("#id_kind", "offline")
    page.fill("#id_after_minutes", "15")
    page.fill("#id_emails", "dune@example.com, night-desk")
    page.select_option("#id_remediation", "soft_reset")
    page.click("button:has-text('Add alert')")
    page.wait_for_selector(".errorlist")
    errors = page.inner_text("#alert-add")
    assert "Not an email address: “night-desk”." in errors
    assert "First aid for “Charger offline” can be: None." in errors
    _check(page, problems, False)
    assert not AlertRule.objects.exists()
    page.fill("#id_emails", "dune@example.com")
    page.select_option("#id_remediation", "none")
    page.click("button:has-text('Add alert')")
    page.wait_for_selector("text=Alert “Charger offline” added.")
    rule = AlertRule.objects.get()
    assert (rule.kind, rule.after_s, rule.email) == ("offline", 900, ["dune@example.com"])
    assert "after 15 min" in page.inner_text("#alert-rules")
    page.click("#alert-rules a:has-text('Change')")
    _check(page, problems, False)
    page.fill("#id_after_minutes", "60")
    page.click("button:has-text('Save alert')")
    page.wait_for_selector("text=Alert “Charger offline” saved.")
    assert "after 1 h" in page.inner_text("#alert-rules")
    page.context.close()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    _login(phone, base)
    phone.goto(f"{base}/uptime/alerts/")
    _check(phone, problems, True)
    phone.goto(f"{base}/uptime/alerts/{rule.pk}/")
    _check(phone, problems, True)
    phone.context.close()
    assert problems == {}, problems
