"""Our eMSP role, their network in: a partner CPO's Locations and Tariffs pushed to our Receiver
interfaces (the spec's examples, 2.2.1 and 2.3.0) and pulled from its Sender interfaces, kept per
organization, tariffs kept in every version."""

from __future__ import annotations

import copy
import json

import pytest
from django.test import Client

from roaming import emsp_network
from roaming.models import PartnerLocation, PartnerTariff
from tests.factories import OrganizationFactory, TokenFactory
from tests.roaming import spec
from tests.roaming.conftest import auth
from tests.roaming.cpo_stub import CpoStub
from tests.roaming.test_emsp_tokens import CPO_TOKEN, api_for, cpo_partner, with_identity

VERSIONS = ["2.2.1", "2.3.0"]


def send(client: Client, method: str, url: str, body=None, token: str = CPO_TOKEN):
    return client.generic(
        method,
        url,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token),
    )


def example_location(version: str) -> dict:
    return spec.example("location_example.json", version)  # BE*BEC, LOC1, EVSEs 3256 and 3257


def example_tariff(version: str, *, cc="BE", pid="BEC") -> dict:
    tariff = copy.deepcopy(spec.example("tariff_13_simple_3hour_5parking.json", version))
    return {**tariff, "country_code": cc, "party_id": pid}


@pytest.fixture
def org(db):
    org = OrganizationFactory()
    with_identity(org)
    return org


@pytest.mark.django_db
@pytest.mark.parametrize("version", VERSIONS)
def test_a_cpo_pushes_the_specs_location_and_patches_an_evse_status(client, org, version):
    cpo_partner(org, version=version, cpo_country_code="BE", cpo_party_id="BEC")
    base = f"/ocpi/{version}/emsp/locations/BE/BEC/LOC1"
    location = example_location(version)

    put = send(client, "PUT", base, location)
    patch = send(
        client, "PATCH", f"{base}/3256", spec.example("location_patch_example_status.json", version)
    )

    assert (put.status_code, put.json()["status_code"]) == (200, 1000), put.json()
    assert patch.json()["status_code"] == 1000, patch.json()
    evse = send(client, "GET", f"{base}/3256").json()["data"]
    assert (evse["status"], evse["uid"]) == ("CHARGING", "3256")
    held = send(client, "GET", base).json()["data"]
    # The location's last_updated follows its newest part (mod_locations "PATCH Method").
    assert held["last_updated"] == "2019-06-24T12:39:09Z"
    assert held["evses"][1] == location["evses"][1]
    row = PartnerLocation.objects.get()
    assert (row.organization_id, row.location_id) == (org.pk, "LOC1")


@pytest.mark.django_db
def test_a_connector_put_and_patched_is_kept_in_its_evse(client, org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    base = "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1"
    send(client, "PUT", base, example_location("2.2.1"))
    connector = {**example_location("2.2.1")["evses"][0]["connectors"][0], "id": "3"}
    connector["last_updated"] = "2020-01-01T00:00:00Z"

    assert send(client, "PUT", f"{base}/3256/3", connector).json()["status_code"] == 1000
    changed = {"max_amperage": 32, "last_updated": "2020-02-01T00:00:00Z"}
    assert send(client, "PATCH", f"{base}/3256/3", changed).json()["status_code"] == 1000

    held = send(client, "GET", f"{base}/3256/3").json()["data"]
    assert (held["id"], held["max_amperage"], held["standard"]) == ("3", 32, connector["standard"])
    assert [c["id"] for c in send(client, "GET", f"{base}/3256").json()["data"]["connectors"]] == [
        "1",
        "2",
        "3",
    ]


@pytest.mark.django_db
def test_what_the_text_does_not_allow_is_refused_and_nothing_changes(client, org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    base = "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1"
    location = example_location("2.2.1")
    send(client, "PUT", base, location)
    before = PartnerLocation.objects.get().data
    now = "2026-01-01T00:00:00Z"

    answers = [
        send(client, "PUT", "/ocpi/2.2.1/emsp/locations/BE/BEC/OTHER", location),  # id
        send(client, "PATCH", f"{base}/3256", {"status": "CHARGING"}),  # no last_updated
        send(client, "PATCH", f"{base}/3256", {"uid": "X", "last_updated": "2020-01-01T00:00:00Z"}),
        send(client, "PUT", f"{base}/3256", {**location["evses"][0], "uid": "9999"}),
        # Structure the driver's pages read (a pushed "evses": 5 failed the location's page).
        send(client, "PUT", base, {**location, "evses": 5}),
        send(client, "PUT", base, {**location, "evses": ["3256"]}),
        send(client, "PATCH", base, {"evses": {"uid": "3256"}, "last_updated": now}),
        send(client, "PATCH", f"{base}/3256", {"connectors": "x", "last_updated": now}),
        send(client, "PATCH", f"{base}/3256", {"capabilities": 1, "last_updated": now}),
        send(client, "PATCH", f"{base}/3256/1", {"tariff_ids": "T1", "last_updated": now}),
    ]
    unknown = [
        send(
            client,
            "PATCH",
            f"{base}/NOPE",
            {"status": "CHARGING", "last_updated": "2020-01-01T00:00:00Z"},
        ),
        send(client, "GET", f"{base}/3256/9"),
        send(
            client,
            "PATCH",
            "/ocpi/2.2.1/emsp/locations/BE/BEC/NEW",
            {"last_updated": "2020-01-01T00:00:00Z"},
        ),
        # Another party than the partner's own CPO party.
        send(
            client,
            "PUT",
            "/ocpi/2.2.1/emsp/locations/NL/XYZ/LOC1",
            {**location, "country_code": "NL", "party_id": "XYZ"},
        ),
    ]

    assert [a.json()["status_code"] for a in answers] == [2001] * 10
    assert [(a.status_code, a.json()["status_code"]) for a in unknown] == [(404, 2003)] * 4
    assert PartnerLocation.objects.get().data == before


@pytest.mark.django_db
@pytest.mark.parametrize("version", VERSIONS)
def test_a_tariff_is_kept_in_every_version_and_a_delete_keeps_them(client, org, version):
    cpo_partner(org, version=version, cpo_country_code="BE", cpo_party_id="BEC")
    url = f"/ocpi/{version}/emsp/tariffs/BE/BEC/21"
    first = example_tariff(version)
    second = {**first, "currency": "EUR", "last_updated": "2019-01-01T00:00:00Z"}

    assert send(client, "PUT", url, first).json()["status_code"] == 1000
    assert send(client, "PUT", url, second).json()["status_code"] == 1000
    assert send(client, "GET", url).json()["data"] == second
    assert send(client, "PUT", url, {**first, "elements": None}).json()["status_code"] == 2001

    assert send(client, "DELETE", url).json()["status_code"] == 1000
    assert send(client, "GET", url).status_code == 404
    versions = PartnerTariff.objects.order_by("last_updated")
    assert [v.data for v in versions] == [first, second]
    assert all(v.removed_at for v in versions) and {v.organization_id for v in versions} == {org.pk}


@pytest.mark.django_db
def test_another_organizations_cpo_sees_and_changes_nothing_of_ours(client, org):
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    other = OrganizationFactory()
    with_identity(other, party_id="OTH", emaid_prefix="NLOTH")
    cpo_partner(other, token="the-other-cpo", cpo_country_code="BE", cpo_party_id="BEC")
    base = "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1"
    send(client, "PUT", base, example_location("2.2.1"))
    send(client, "PUT", "/ocpi/2.2.1/emsp/tariffs/BE/BEC/21", example_tariff("2.2.1"))
    ours = list(PartnerLocation.objects.values_list("data", flat=True))

    assert send(client, "GET", base, token="the-other-cpo").status_code == 404
    assert (
        send(client, "GET", "/ocpi/2.2.1/emsp/tariffs/BE/BEC/21", token="the-other-cpo").status_code
        == 404
    )
    assert (
        send(
            client, "DELETE", "/ocpi/2.2.1/emsp/tariffs/BE/BEC/21", token="the-other-cpo"
        ).status_code
        == 404
    )
    patch = {"status": "REMOVED", "last_updated": "2026-01-01T00:00:00Z"}
    assert send(client, "PATCH", f"{base}/3256", patch, token="the-other-cpo").status_code == 404
    assert (
        list(PartnerLocation.objects.filter(organization=org).values_list("data", flat=True))
        == ours
    )
    assert PartnerTariff.objects.get().removed_at is None


@pytest.mark.django_db(transaction=True)
def test_a_cpo_registered_through_the_api_has_its_locations_and_tariffs_pulled_page_by_page(
    live_server, settings
):
    settings.SITE_URL = live_server.url
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    org = OrganizationFactory()
    with_identity(org)
    TokenFactory(organization=org, uid="04AABBCC01")
    cpo = CpoStub(versions=("2.2.1", "2.3.0"))
    cpo.COUNTRY_CODE, cpo.PARTY_ID = "BE", "BEC"
    try:
        second = {**example_location("2.3.0"), "id": "LOC2"}
        cpo.locations = [example_location("2.3.0"), second]
        cpo.tariffs = [example_tariff("2.3.0")]

        created = api_for(org).post(
            "/api/v1/roaming/partners/",
            {
                "organization": org.pk,
                "name": "CPO",
                "versions_url": cpo.versions_url,
                "token_a": cpo.token_a,
            },
            format="json",
        )

        assert created.status_code == 201, created.content
        assert sorted(PartnerLocation.objects.values_list("location_id", flat=True)) == [
            "LOC1",
            "LOC2",
        ]
        assert PartnerTariff.objects.get().tariff_id == "21"
        pages = [r for r in cpo.received if r["path"].endswith("/locations")]
        assert len(pages) == 2  # one location a page: the Link was followed
        # The partner pushes a change afterwards, to the Receiver we listed.
        status, answer = cpo.push(
            "PATCH",
            "locations",
            "/BE/BEC/LOC2/3257",
            {"status": "OUTOFORDER", "last_updated": "2026-01-01T00:00:00Z"},
        )
        assert (status, answer["status_code"]) == (200, 1000)
        loc2 = PartnerLocation.objects.get(location_id="LOC2").data
        assert loc2["evses"][1]["status"] == "OUTOFORDER"
        assert emsp_network.network_pull(partner_id=created.json()["id"]) == (2, 1)
    finally:
        cpo.close()


@pytest.mark.django_db
def test_a_late_location_push_does_not_put_back_an_older_state(client, org):
    """A CPO's push retried or delivered late, after a newer one: an EVSE's status (what a
    driver sees before going there) and the location stay as the newest push said."""
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    base = "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1"
    location = example_location("2.2.1")
    send(client, "PUT", base, location)
    charging = {"status": "CHARGING", "last_updated": "2026-01-01T10:00:00Z"}
    available = {"status": "AVAILABLE", "last_updated": "2026-01-01T09:00:00Z"}  # sent earlier

    assert send(client, "PATCH", f"{base}/3256", charging).json()["status_code"] == 1000
    assert send(client, "PATCH", f"{base}/3256", available).json()["status_code"] == 1000

    assert send(client, "GET", f"{base}/3256").json()["data"]["status"] == "CHARGING"
    # The whole location as it stood before that (its own last_updated older): kept as is.
    assert send(client, "PUT", base, location).json()["status_code"] == 1000
    held = send(client, "GET", base).json()["data"]
    assert held["last_updated"] == "2026-01-01T10:00:00Z"
    assert held["evses"][0]["status"] == "CHARGING"
