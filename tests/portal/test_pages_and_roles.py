"""Every portal page for every role, and another organization's objects as 404.

Add a page by adding a row to PAGES (or OBJECT_PAGES when it shows one object).
"""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

# Pages that list the user's own things: every member may open them.
PAGES = [
    lambda s: reverse("backoffice:dashboard"),
    lambda s: reverse("chargers:charger-list"),
    lambda s: reverse("chargers:charger-list") + "?status=faulted&q=CP",
    lambda s: reverse("chargers:location-list"),
    lambda s: reverse("chargers:session-list"),
    lambda s: reverse("chargers:session-list") + "?date_from=2020-01-01&token=A0001",
    lambda s: reverse("chargers:session-export"),
    lambda s: reverse("authorization:token-list") + "?q=0001",
    lambda s: reverse("authorization:token-group-list"),
    lambda s: reverse("authorization:roaming") + "?uid=MSP01",
    lambda s: reverse("authorization:msp-list"),
]

# Pages of one object: 200 for its members, 404 for anyone else.
OBJECT_PAGES = [
    lambda s: reverse("chargers:charger-detail", args=[s.charger.station_id]),
    lambda s: reverse("chargers:charger-logs", args=[s.charger.station_id]),
    lambda s: (
        reverse("chargers:charger-logs", args=[s.charger.station_id])
        + "?q=Authorize&direction=in&type=CALL"
    ),
    lambda s: reverse("chargers:charger-logs", args=[s.charger.station_id]) + "?after=0",
    lambda s: reverse("chargers:charger-proxy", args=[s.charger.station_id]),
    lambda s: reverse("chargers:charger-sessions", args=[s.charger.station_id]),
    lambda s: reverse("chargers:charger-authorizations", args=[s.charger.station_id]),
    lambda s: reverse("chargers:decision-detail", args=[s.decision.pk]),
    lambda s: reverse("chargers:location-detail", args=[s.prop.pk]),
    lambda s: reverse("chargers:session-detail", args=[s.session.pk]),
    lambda s: reverse("authorization:token-edit", args=[s.token.pk]),
    lambda s: reverse("authorization:token-group-detail", args=[s.group.pk]),
]

# Writes: (url, data). Viewers get 403, another organization 404.
ACTIONS = [
    lambda s: (
        reverse("chargers:charger-command", args=[s.charger.station_id]),
        {"action": "Reset", "reset_type": "Soft"},
    ),
    lambda s: (
        reverse("chargers:charger-settings", args=[s.charger.station_id]),
        {
            "name": "Front",
            "access_mode": "public",
            "roaming_enabled": "unknown",
            "guest_charging_enabled": "unknown",
        },
    ),
    lambda s: (
        reverse("chargers:charger-whitelist", args=[s.charger.station_id]),
        {"uid": "DEADBEEF", "group": s.group.pk},
    ),
    lambda s: (reverse("chargers:location-detail", args=[s.prop.pk]), {"roaming_enabled": "on"}),
    lambda s: (
        reverse("authorization:token-edit", args=[s.token.pk]),
        {"label": "x", "valid": "on"},
    ),
    lambda s: (reverse("authorization:token-group-detail", args=[s.group.pk]), {"uid": "CAFE1234"}),
    lambda s: (reverse("authorization:token-group-remove", args=[s.group.pk, s.token.pk]), {}),
    lambda s: (reverse("authorization:msp-block", args=[s.msp.pk]), {"blocked": "1"}),
]

ROLES = ["owner", "manager", "viewer"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES + OBJECT_PAGES)
def test_every_page_opens_for_every_role(client, site, role, page):
    client.force_login(getattr(site, role))
    response = client.get(page(site))
    assert response.status_code == 200, page(site)


@pytest.mark.parametrize("page", OBJECT_PAGES)
def test_another_organizations_object_is_404(client, site, other, page):
    client.force_login(other.owner)
    assert client.get(page(site)).status_code == 404


@pytest.mark.parametrize("page", PAGES + OBJECT_PAGES)
def test_anonymous_users_are_sent_to_login(client, site, page):
    response = client.get(page(site))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("action", ACTIONS)
def test_viewers_cannot_change_anything(client, site, action):
    client.force_login(site.viewer)
    url, data = action(site)
    assert client.post(url, data).status_code == 403


@pytest.mark.parametrize("action", ACTIONS)
def test_another_organization_cannot_change_anything(client, site, other, action):
    client.force_login(other.owner)
    url, data = action(site)
    assert client.post(url, data).status_code == 404


@pytest.mark.django_db(transaction=True)  # commands run ORM code on worker threads
@pytest.mark.parametrize("role", ["owner", "manager"])
@pytest.mark.parametrize("action", ACTIONS)
def test_owners_and_managers_may_change_things(client, site, role, action):
    client.force_login(getattr(site, role))
    url, data = action(site)
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:2000]


def test_lists_show_only_the_users_organization(client, site, other):
    client.force_login(site.owner)
    for url in (
        reverse("chargers:charger-list"),
        reverse("chargers:location-list"),
        reverse("chargers:session-list"),
        reverse("authorization:token-list"),
        reverse("authorization:msp-list"),
        reverse("authorization:token-group-list"),
    ):
        body = client.get(url).content.decode()
        assert (
            "B-CP-1" not in body
            and "B Garage" not in body
            and "B0001" not in body
            and "B Roam" not in body
        ), url
    body = client.get(reverse("authorization:roaming") + "?uid=MSP01").content.decode()
    assert "AMSP01" in body and "BMSP01" not in body


def test_payouts_link_only_for_owners(client, site):
    client.force_login(site.owner)
    assert "/billing/payouts/" in client.get("/").content.decode()
    client.force_login(site.manager)
    assert "/billing/payouts/" not in client.get("/").content.decode()


def test_viewers_see_no_forms_that_change_things(client, site):
    client.force_login(site.viewer)
    body = client.get(
        reverse("chargers:charger-detail", args=[site.charger.station_id])
    ).content.decode()
    assert 'id="command-form"' not in body and "read-only" in body
    body = client.get(
        reverse("chargers:charger-logs", args=[site.charger.station_id])
    ).content.decode()
    assert "Whitelist this UID" not in body
    body = client.get(reverse("authorization:msp-list")).content.decode()
    assert "Block</button>" not in body
