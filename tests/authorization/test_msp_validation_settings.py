"""Mobility Providers: the live-validation timeout and the on-timeout policy are editable by
owners and managers of the provider's organization (it was display-only)."""

import pytest

from authorization.models import MobilityServiceProvider
from tests.factories import MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def msp(prop):
    return MobilityServiceProvider.objects.create(
        organization=prop.organization,
        name="PlugSurfing",
        country_code="NL",
        party_id="PLS",
        live_validation_url="https://msp.example/ocpi/2.2.1/tokens",
    )


def test_owner_edits_timeout_and_policy(client, host, msp):
    from django.urls import reverse

    client.force_login(host)

    url = reverse("authorization:msp-validation", args=[msp.pk])
    listing = client.get(reverse("authorization:msp-list")).content.decode()
    # Issue 35 item 3: the list links to the provider's page, which answers GET with the form.
    assert f'href="{url}"' in listing and "on, 15 s timeout, then reject the card" in listing
    page = client.get(url).content.decode()
    assert 'name="timeout_s" value="15"' in page and "try the card again after a brief wait" in page
    client.post(url, {"timeout_s": "5", "on_timeout": "accept"})
    msp.refresh_from_db()
    assert (msp.timeout_s, msp.on_timeout) == (5, "accept")


@pytest.mark.parametrize(
    "data",
    [
        {"timeout_s": "0", "on_timeout": "accept"},
        {"timeout_s": "90", "on_timeout": "reject"},
        {"timeout_s": "x", "on_timeout": "reject"},
        {"timeout_s": "5", "on_timeout": "maybe"},
    ],
)
def test_bad_values_change_nothing_and_say_why(client, host, msp, data):
    from django.urls import reverse

    client.force_login(host)
    response = client.post(
        reverse("authorization:msp-validation", args=[msp.pk]), data, follow=True
    )
    msp.refresh_from_db()
    assert (msp.timeout_s, msp.on_timeout) == (15, "reject")
    assert response.status_code == 400
    assert "not changed" in response.content.decode()


def test_viewers_and_other_organizations_cannot(client, prop, msp):
    from django.urls import reverse

    url = reverse("authorization:msp-validation", args=[msp.pk])
    viewer = MembershipFactory(organization=prop.organization, role="viewer").user
    stranger = MembershipFactory(organization=PropertyFactory().organization, role="owner").user
    for user in (viewer, stranger):
        client.force_login(user)
        assert client.post(url, {"timeout_s": "3", "on_timeout": "accept"}).status_code in (
            403,
            404,
        )
    msp.refresh_from_db()
    assert msp.timeout_s == 15
    client.force_login(viewer)
    page = client.get(url).content.decode()  # viewers read the settings, without a form
    assert "15 s" in page and 'name="timeout_s"' not in page
