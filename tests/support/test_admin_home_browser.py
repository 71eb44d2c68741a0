"""The support home in Chromium: the admin opens on one search, an agent finds a charger with it,
and axe-core finds no serious or critical problem on the home, the results or a change form with
split date and time inputs (each half labelled) and autocomplete boxes; nothing breaks the CSP."""

import pytest

from tests.security.csp_browser import watch_csp
from tests.security.test_csp_browser import PASSWORD, agent, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


def _axe(page, context=None) -> list:  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe

    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in Axe().run(page, context=context).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_an_agent_finds_a_charger_from_the_admin_home(live_server_proc, agent, page):  # noqa: F811
    base = live_server_proc.url
    violations = watch_csp(page, [])
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "agent@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    assert page.locator("#support-q").is_visible()
    assert not page.locator("details.all-tables").get_attribute("open")
    assert _axe(page) == []

    page.fill("#support-q", "csp-001")
    page.press("#support-q", "Enter")
    page.wait_for_selector("ul.support-results >> text=CSP-001")
    assert page.locator("ul.support-results a", has_text="Logs").count() == 1
    assert _axe(page) == []
    assert violations == []

    # A change form with split date and time inputs: each half has its own label; and its
    # autocomplete boxes (Django's select2), named by their labels (static/support/admin_names.js).
    page.goto(f"{base}/admin/authorization/token/add/")
    page.wait_for_selector("#id_expires_at_1")
    assert page.locator("label[for=id_expires_at_1]").inner_text().startswith("Time")
    page.wait_for_selector('.select2-selection[role="combobox"][aria-labelledby*="_label "]')
    assert _axe(page) == []
