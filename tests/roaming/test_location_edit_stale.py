"""A location's roaming data edited in two tabs: a save from a page opened before the other
tab's save is refused (backoffice.forms.StaleEditMixin) instead of taking back what partners and
the access point were just sent."""

from __future__ import annotations

import re

import pytest

from roaming.models import EvseProfile, LocationProfile
from tests.factories import MembershipFactory, UserFactory
from tests.roaming.test_afir_fields import form_data

pytestmark = pytest.mark.django_db


def _versions(page: str) -> dict[str, str]:
    return dict(re.findall(r'name="([^"]*edited_version)" value="([^"]*)"', page))


def test_a_stale_tab_does_not_take_back_the_location_data_saved_since(client, operator):
    prop, charger = operator["closed"], operator["cp_closed"]
    owner = UserFactory()
    MembershipFactory(organization=operator["org"], user=owner, role="owner")
    client.force_login(owner)
    url = f"/roaming/locations/{prop.pk}/"
    assert client.post(url, form_data(prop, charger)).status_code == 302  # first save
    stale = _versions(client.get(url).content.decode())
    current = _versions(client.get(url).content.decode())
    assert set(stale) == {"loc-edited_version", f"cp{charger.pk}-edited_version"}
    green = form_data(prop, charger, **{"loc-green_energy": "yes", "loc-energy_supplier": "Eneco"})
    assert client.post(url, {**green, **current}).status_code == 302
    refused = client.post(url, {**form_data(prop, charger, **{"loc-city": "Delft"}), **stale})
    assert refused.status_code == 200  # the page again, with the sentence
    assert "Someone else saved this at" in refused.content.decode()
    profile = LocationProfile.objects.get(property=prop)
    assert profile.energy_mix["supplier_name"] == "Eneco" and profile.city == "Gouda"
    assert EvseProfile.objects.filter(charger=charger).count() == 1
