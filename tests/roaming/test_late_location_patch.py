"""A CPO's PATCH of a whole Location (not an EVSE) retried or delivered late, after a newer one,
does not put back the older fields, nor move the location's last_updated back."""

import json

import pytest

from tests.factories import OrganizationFactory
from tests.roaming import spec
from tests.roaming.conftest import auth
from tests.roaming.test_emsp_tokens import CPO_TOKEN, cpo_partner, with_identity

BASE = "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1"


def send(client, method, url, body=None):
    return client.generic(
        method,
        url,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(CPO_TOKEN),
    )


@pytest.mark.django_db
def test_a_late_location_patch_does_not_put_back_an_older_state(client):
    org = OrganizationFactory()
    with_identity(org)
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    location = spec.example("location_example.json", "2.2.1")
    assert send(client, "PUT", BASE, location).json()["status_code"] == 1000
    newer = {"name": "Withdrawn garage", "publish": False, "last_updated": "2026-01-01T10:00:00Z"}
    older = {"name": "Old name", "publish": True, "last_updated": "2026-01-01T09:00:00Z"}

    assert send(client, "PATCH", BASE, newer).json()["status_code"] == 1000
    late = send(client, "PATCH", BASE, older)  # the first PATCH retried after its answer was lost

    assert late.json()["status_code"] == 1000  # taken: the CPO stops retrying
    held = send(client, "GET", BASE).json()["data"]
    assert (held["name"], held["publish"], held["last_updated"]) == (
        "Withdrawn garage",
        False,
        "2026-01-01T10:00:00Z",
    )
