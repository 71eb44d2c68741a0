"""A site's power budget edited in two tabs: the save from the tab opened before the other's save
is refused in words (it would silently put the old limits back), and two saves sent at once take
turns, so the second is refused too instead of overwriting the first unseen."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from power.models import Circuit, SiteBudget
from tests.concurrency import all_at_once

FORM = {"phases": "3", "voltage": "230", "policy": "equal", "schedule": "", "circuits": ""}
REFUSED = "after you opened this page: your changes are not saved"


def page(prop) -> str:
    return f"/locations/{prop.pk}/power/"


def _opened(client: Client, prop) -> str:
    """The budget version the page's form carries (what the tab saw)."""
    match = re.search(r'name="version" value="([^"]*)"', client.get(page(prop)).content.decode())
    return match.group(1) if match else ""


@pytest.mark.django_db
def test_a_save_from_a_tab_opened_before_another_save_is_refused(client, host, prop):
    client.force_login(host)
    client.post(page(prop), {**FORM, "limit_a": "50", "version": _opened(client, prop)})
    first_tab = _opened(client, prop)
    second_tab = _opened(client, prop)
    saved = client.post(page(prop), {**FORM, "limit_a": "40", "version": second_tab})
    assert saved.status_code == 302
    stale = client.post(
        page(prop), {**FORM, "limit_a": "63", "circuits": "Garage: 32 A", "version": first_tab}
    )
    assert stale.status_code == 200 and REFUSED in stale.content.decode()
    site = SiteBudget.objects.get(property=prop)
    assert site.limit_a == 40 and not Circuit.objects.filter(property=prop).exists()
    # The refused page now carries the budget as saved: sending it again replaces it.
    again = re.search(r'name="version" value="([^"]*)"', stale.content.decode()).group(1)
    assert again != first_tab
    fresh = client.post(page(prop), {**FORM, "limit_a": "63", "version": again})
    assert fresh.status_code == 302 and SiteBudget.objects.get(property=prop).limit_a == 63


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
@pytest.mark.parametrize("existing", [False, True], ids=["new budget", "existing budget"])
def test_two_saves_sent_at_once_from_tabs_that_saw_the_same_budget_save_one(host, prop, existing):
    tabs = [Client() for _ in range(2)]
    for tab in tabs:
        tab.force_login(host)
    if existing:
        tabs[0].post(page(prop), {**FORM, "limit_a": "50", "version": _opened(tabs[0], prop)})
    version = _opened(tabs[0], prop)
    answers = all_at_once(
        *[
            lambda tab=tab, limit=limit: tab.post(
                page(prop), {**FORM, "limit_a": limit, "version": version}
            )
            for tab, limit in zip(tabs, ("40", "63"), strict=True)
        ]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 302]
    refused = next(a for a in answers if a.status_code == 200)
    assert REFUSED in refused.content.decode()
    kept = next(
        limit for a, limit in zip(answers, ("40", "63"), strict=True) if a.status_code == 302
    )
    assert SiteBudget.objects.get(property=prop).limit_a == int(kept)
