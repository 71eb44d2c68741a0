"""The host's "Set chargers to report their energy meter" (issue 33 item 9): on the Chargers
page, owners and managers change Organization.configure_energy_reporting; a viewer sees it
and cannot change it; a stranger's post finds nothing."""

import pytest
from django.urls import reverse

from backoffice.models import Organization
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def _checkbox(html: str, org: Organization) -> str:
    start = html.index(f'id="energy-reporting-{org.pk}"')
    return html[html.rindex("<input", 0, start) : html.index(">", start)]


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owners_and_managers_turn_it_off_and_on(client, role):
    member = MembershipFactory(role=role)
    org = member.organization
    client.force_login(member.user)
    page = client.get(reverse("chargers:charger-list")).content.decode()
    checkbox = _checkbox(page, org)
    assert "checked" in checkbox and "disabled" not in checkbox

    url = reverse("backoffice:organization-energy-reporting", args=[org.pk])
    response = client.post(url, {})  # the checkbox unticked
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.configure_energy_reporting is False
    page = client.get(response["Location"]).content.decode()
    assert "no longer sets chargers to report their energy meter" in page
    assert "checked" not in _checkbox(page, org)

    client.post(url, {"configure_energy_reporting": "on"})
    org.refresh_from_db()
    assert org.configure_energy_reporting is True


def test_a_viewer_sees_it_and_cannot_change_it(client):
    member = MembershipFactory(role="viewer")
    org = member.organization
    client.force_login(member.user)
    page = client.get(reverse("chargers:charger-list")).content.decode()
    assert "disabled" in _checkbox(page, org)
    assert "Owners and managers can change this." in page
    url = reverse("backoffice:organization-energy-reporting", args=[org.pk])
    assert client.post(url, {}).status_code == 403
    org.refresh_from_db()
    assert org.configure_energy_reporting is True


def test_another_organization_is_not_found(client):
    member = MembershipFactory(role="owner")
    other = OrganizationFactory()
    client.force_login(member.user)
    url = reverse("backoffice:organization-energy-reporting", args=[other.pk])
    assert client.post(url, {}).status_code == 404
    other.refresh_from_db()
    assert other.configure_energy_reporting is True
    assert (
        f'id="energy-reporting-{other.pk}"'
        not in client.get(reverse("chargers:charger-list")).content.decode()
    )
