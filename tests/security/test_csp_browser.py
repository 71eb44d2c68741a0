"""Django admin, the API docs and the QR label sheet work in Chromium under the CSP, with no violation."""

import pytest

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory
from tests.security.csp_browser import watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "agent-pass-123456"


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


@pytest.fixture
def agent(transactional_db):
    prop = PropertyFactory(name="Harbour View Garage")
    charger = ChargerFactory(property=prop, station_id="CSP-001", name="Entrance")
    user = UserFactory(
        username="agent@example.com", password=PASSWORD, is_staff=True, is_superuser=True
    )
    MembershipFactory(organization=prop.organization, user=user, role="owner")
    return {"charger": charger, "property": prop}


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def test_admin_docs_and_labels_run_without_csp_violations(live_server_proc, agent, page):
    base = live_server_proc.url
    violations = watch_csp(page, [])

    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "agent@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    # A change list with its actions bar (admin's JavaScript), then a change form.
    page.goto(f"{base}/admin/chargers/charger/")
    page.wait_for_selector("#result_list >> text=CSP-001")
    page.check("#action-toggle")  # admin's actions.js ticks every row
    assert page.locator(".action-select:checked").count() == 1
    page.click("#result_list >> text=CSP-001")
    page.wait_for_selector("form#charger_form")

    # Swagger UI renders from our static files, its start-up script allowed by nonce.
    page.goto(f"{base}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info", timeout=20000)

    # The printable QR sheet: the Print button's handler lives in a static file now.
    page.goto(f"{base}/s/labels/property/{agent['property'].pk}/")
    page.wait_for_selector(".label svg")

    assert violations == []
