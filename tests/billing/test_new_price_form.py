"""Issue 46 item 5: a new price starts from the price in force, not from zeros, and shows what
changes before it is saved; once saved it is listed on the Prices page and on the guest page of
every charger it applies to at once."""

from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Rate
from tests.factories import ChargerFactory
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db


class _Form(HTMLParser):
    """The values a browser would submit from the page's #rate-form."""

    def __init__(self):
        super().__init__()
        self.inside = False
        self.values: dict[str, str] = {}
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == "rate-form"
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "checkbox"):
            self.values[a["name"]] = a.get("value") or ""
        if tag == "input" and a.get("type") == "checkbox" and "checked" in a:
            self.values[a["name"]] = "on"
        if tag == "select":
            self.select = a.get("name")
            self.values.setdefault(self.select, "")
        if tag == "option" and self.select and "selected" in a:
            self.values[self.select] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        if tag == "select":
            self.select = None


def _form_values(html: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html)
    return parser.values


def test_a_price_saved_for_the_kwh_alone_keeps_the_other_fees(host, prop, charger):
    make_online(charger)
    other = make_online(ChargerFactory(property=prop, station_id="CP-TEST-2"))
    Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=30),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.39"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
        processing_fee_percent=Decimal("2.5"),
        processing_fee_fixed=Decimal("0.25"),
    )
    portal = Client()
    portal.force_login(host)
    url = f"/billing/properties/{prop.pk}/rates/"
    page = portal.get(f"{url}?charger={charger.pk}").content.decode()
    values = _form_values(page)
    assert values["charger"] == str(charger.pk)
    assert Decimal(values["idle_fee_per_minute"]) == Decimal("0.10")
    assert Decimal(values["processing_fee_fixed"]) == Decimal("0.25")
    assert values["valid_from_0"] and values["valid_from_1"]  # from now, not empty

    values["energy_price_per_kwh"] = "0.45"
    review = portal.post(url, {**values, "review": "1"})
    assert review.status_code == 200
    changes = review.content.decode().split('id="rate-changes"', 1)[1].split("</section>", 1)[0]
    assert "0.39" in changes and "0.45" in changes
    assert "Idle fee" not in changes and "Processing fee" not in changes and "Tax" not in changes
    assert Rate.objects.count() == 1  # reviewing saves nothing

    saved = portal.post(url, _form_values(review.content.decode()))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    rate = Rate.objects.get(charger=charger)
    assert rate.energy_price_per_kwh == Decimal("0.45")
    assert (rate.idle_fee_per_minute, rate.idle_grace_minutes) == (Decimal("0.10"), 15)
    assert (rate.processing_fee_percent, rate.processing_fee_fixed) == (
        Decimal("2.5"),
        Decimal("0.25"),
    )
    assert (rate.connection_fee, rate.tax_percent) == (Decimal("1.00"), Decimal("21"))

    listed = portal.get(url).content.decode().split('id="rates"', 1)[1]
    assert "0.4500" in listed
    guest = Client()
    here = guest.get(f"/s/{charger.station_id}").content.decode()
    assert "EUR 0.45 / kWh" in here and "0.10 / min" in here
    elsewhere = guest.get(f"/s/{other.station_id}").content.decode()
    assert "EUR 0.39 / kWh" in elsewhere
