"""A price edited in two tabs (or by two colleagues): the later save from a page opened before
the earlier save does not silently put that page's old prices back (backoffice.forms
.StaleEditMixin); it says so, shows what is saved now, and a second save replaces it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from billing.models import Rate
from tests.billing.helpers import unit_rate
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _form(page: str) -> dict[str, str]:
    """The edit form's fields as a browser would post them (inputs with a value)."""
    fields = {}
    for tag in re.findall(r"<input[^>]+>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if not name or name.group(1) == "csrfmiddlewaretoken":
            continue
        if kind and kind.group(1) == "checkbox":
            if "checked" in tag:
                fields[name.group(1)] = "on"
            continue
        fields[name.group(1)] = value.group(1) if value else ""
    return fields


def test_a_save_from_a_page_opened_before_a_colleagues_save_is_refused_then_replaces(client, prop):
    rate = unit_rate(prop, idle_fee_per_minute=Decimal("0.10"))
    url = f"/billing/rates/{rate.pk}/edit/"
    owner = MembershipFactory(organization=prop.organization, role="owner").user
    client.force_login(owner)
    first_tab = _form(client.get(url).content.decode())
    second_tab = _form(client.get(url).content.decode())
    assert first_tab["edited_version"]  # the page carries the version it shows
    # The colleague's tab saves a new energy price.
    saved = client.post(url, {**second_tab, "energy_price_per_kwh": "0.35"})
    assert saved.status_code == 302
    # The first tab, opened before, changes only the idle fee and saves.
    stale = client.post(url, {**first_tab, "idle_fee_per_minute": "0.20"})
    assert stale.status_code == 400
    html = stale.content.decode()
    assert "Someone else saved this at" in html and "your changes are not saved" in html
    assert "0.35" in html  # what is saved now, so the host sees the colleague's price
    rate.refresh_from_db()
    assert rate.energy_price_per_kwh == Decimal("0.35")  # not put back to 1.00
    assert rate.idle_fee_per_minute == Decimal("0.10")
    # Saving again from the refused page is a deliberate choice: it replaces.
    again = client.post(url, _form(html))
    assert again.status_code == 302
    rate.refresh_from_db()
    assert rate.idle_fee_per_minute == Decimal("0.20")


def test_an_edit_from_a_current_page_saves_at_once(client, prop):
    rate = unit_rate(prop)
    url = f"/billing/rates/{rate.pk}/edit/"
    client.force_login(MembershipFactory(organization=prop.organization, role="owner").user)
    page = _form(client.get(url).content.decode())
    assert client.post(url, {**page, "energy_price_per_kwh": "0.45"}).status_code == 302
    assert Rate.objects.get(pk=rate.pk).energy_price_per_kwh == Decimal("0.45")
