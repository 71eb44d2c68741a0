"""The Mobility Providers pages (roaming/portal_urls.py) for a member of another organization:
every page that names an operator's partner, terminal or location answers 404 to a stranger,
to GET and to POST full of plausible fields, and no row changes anywhere. The lists show only
the stranger's own partners and feeds. (tests/security/test_portal_write_routes.py points here.)"""

from __future__ import annotations

import pytest
from django.urls import reverse

from roaming import payments
from roaming.models import Partner
from tests.factories import MembershipFactory
from tests.roaming.conftest import connected_partner
from tests.security.conftest import changed_tables, db_state

pytestmark = pytest.mark.django_db

# Route name: (URL args from the operator's objects, a POST body a real form would send).
NAMED = {
    "msp-ocpi-partner": (lambda o: [o["partner"].pk], {"action": "test"}),
    "msp-ocpi-partner-unregister": (lambda o: [o["partner"].pk], {}),
    "msp-ocpi-partner-version-update": (lambda o: [o["partner"].pk], {}),
    "terminal-assign": (lambda o: [o["terminal"].pk], {"evses": ["1:1"]}),
    "terminal-deactivate": (lambda o: [o["terminal"].pk], {}),
    "terminal-activate": (lambda o: [o["ptp"].pk], {"terminal_id": "T-NEW"}),
    "location-ocpi": (lambda o: [o["public"].pk], {"help_phone": "+31 20 000 0000"}),
    "location-parking": (lambda o: [o["public"].pk], {"action": "add", "max_vehicle_height": "2"}),
}


@pytest.fixture
def objects(operator):
    ptp = connected_partner(
        operator["org"],
        token="ptp-token",
        name="Terminals Inc",
        role="PTP",
        country_code="AT",
        party_id="PTP",
        version="2.3.0",
    )
    terminal, _ = payments.terminal_receive(partner=ptp, body={"terminal_id": "T-1"})
    return {
        **operator,
        "partner": connected_partner(operator["org"], name="Zebra Mobility"),
        "ptp": ptp,
        "terminal": terminal,
    }


@pytest.mark.parametrize("name", sorted(NAMED))
def test_a_stranger_gets_404_and_changes_nothing(client, objects, name):
    args, body = NAMED[name]
    client.force_login(MembershipFactory(role="owner").user)
    url = reverse(f"partners:{name}", args=args(objects))
    before = db_state()
    assert client.get(url).status_code in (404, 405)  # 405: a POST-only action
    assert client.post(url, body).status_code == 404
    assert changed_tables(before, db_state()) == []


def test_the_lists_show_only_the_strangers_own(client, objects):
    stranger = MembershipFactory(role="owner")
    own = connected_partner(stranger.organization, token="own-token", name="Own partner")
    client.force_login(stranger.user)
    page = client.get(reverse("partners:msp-ocpi-partner-list")).content.decode()
    assert own.name in page
    assert "Zebra Mobility" not in page and "Terminals Inc" not in page
    assert Partner.objects.filter(name__in=["Zebra Mobility", "Terminals Inc"]).count() == 2
    feeds = client.get(reverse("partners:access-points")).content.decode()
    assert objects["public"].name not in feeds
