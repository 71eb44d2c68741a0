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
    from tests.axe import Axe

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


@pytest.fixture
def unnamed(agent):  # noqa: F811 (the fixture imported above)
    """What Django's admin leaves unnamed: a tabular inline row (connectors, memberships), a
    filter_horizontal (a token group's tokens), an empty value in a list filter (a guest session
    that did not fail). Made before the browser runs its event loop in this thread."""
    from authorization.models import TokenGroup
    from chargers.models import Connector
    from guest.models import GuestSession

    charger, organization = agent["charger"], agent["property"].organization
    Connector.objects.create(charger=charger, connector_id=1, status="Available")
    group = TokenGroup.objects.create(organization=organization, name="Residents")
    GuestSession.objects.create(charger=charger, connector_id=1, email="guest@example.com")
    return [
        (
            f"/admin/backoffice/organization/{organization.pk}/change/",
            ".tabular select[aria-label]",
        ),
        (f"/admin/chargers/charger/{charger.pk}/change/", ".tabular input[aria-label]"),
        (f"/admin/authorization/tokengroup/{group.pk}/change/", "span.help-tooltip[role=img]"),
        ("/admin/guest/guestsession/", "#changelist-filter a >> text=(blank)"),
    ]


def test_what_django_admin_leaves_unnamed_gets_a_name(live_server_proc, unnamed, page):  # noqa: F811
    """Tabular inlines (their inputs named by a column header only), the filter-list help icons
    (an aria-label on a span with no role) and a list filter's empty choice (a link with no text):
    static/support/admin_names.js names them, so axe-core finds nothing serious on these pages."""
    base = live_server_proc.url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "agent@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    for path, ready in unnamed:
        page.goto(f"{base}{path}")
        page.wait_for_selector(ready)
        assert _axe(page) == [], path
