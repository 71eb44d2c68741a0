"""OCPI 2.3.0 beside 2.2.1: the versions endpoint, registration on the newest version both sides
speak, a partner's move from 2.2.1 to 2.3.0 by a credentials update (either side asks), and
2.3.0 hubs naming their parties (`hub_party_id`). Over real HTTP with the independent stubs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from roaming import ocpi, services
from roaming.models import Delivery, HubParty, LocationProfile, ParkingEvse, ParkingPlace, Partner
from tests.factories import OrganizationFactory
from tests.roaming import spec_types
from tests.roaming.conftest import auth
from tests.roaming.emsp_stub import EmspStub


@pytest.fixture
def stubs(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the stubs listen on loopback
    made: list[EmspStub] = []

    def make(**kwargs) -> EmspStub:
        stub = EmspStub(**kwargs)
        made.append(stub)
        return stub

    yield make
    for stub in made:
        stub.close()


def test_the_versions_endpoint_offers_both_versions_and_each_its_modules(client, partner):
    versions = client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth()).json()["data"]
    assert [v["version"] for v in versions] == ["2.2.1", "2.3.0"]
    assert versions[1]["url"].endswith("/ocpi/2.3.0")
    old = client.get("/ocpi/2.2.1", HTTP_AUTHORIZATION=auth()).json()["data"]
    new = client.get("/ocpi/2.3.0", HTTP_AUTHORIZATION=auth()).json()["data"]
    assert (old["version"], new["version"]) == ("2.2.1", "2.3.0")
    old_modules = {(e["identifier"], e["role"]) for e in old["endpoints"]}
    new_modules = {(e["identifier"], e["role"]) for e in new["endpoints"]}
    assert new_modules - old_modules == {("payments", "RECEIVER")}
    assert all("/ocpi/2.3.0/" in e["url"] for e in new["endpoints"])
    assert client.get("/ocpi/2.2.0", HTTP_AUTHORIZATION=auth()).status_code == 404


def test_a_partner_speaking_both_registers_on_2_3_0_and_an_older_one_on_2_2_1(live_server, stubs):
    both, old = stubs(versions=("2.2.1", "2.3.0")), stubs()
    versions_url = f"{live_server.url}/ocpi/versions"
    for stub in (both, old):
        partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="S")
        stub.register_with(versions_url, token_a)
        partner.refresh_from_db()
        assert partner.version == stub.version
        assert partner.versions_offered == sorted(stub.versions)
    assert (both.version, old.version) == ("2.3.0", "2.2.1")
    # Our credentials answer is in the version it registered on; the roles name our CPO party.
    status, body, _ = both.request("GET", both.cpo_endpoints[("credentials", "SENDER")])
    assert status == 200 and body["data"]["roles"][0]["role"] == "CPO"
    spec_types.check(body["data"], "credentials_credentials_object")
    assert both.cpo_endpoints[("credentials", "SENDER")].endswith("/ocpi/2.3.0/credentials")


def test_we_register_with_a_partner_on_the_newest_version_both_speak(live_server, stubs):
    both = stubs(versions=("2.2.1", "2.3.0"))
    partner = services.partner_connect(
        organization=OrganizationFactory(),
        name="Both",
        versions_url=both.versions_url,
        token_a=both.token_a,
        our_versions_url=f"{live_server.url}/ocpi/versions",
    )
    assert partner.version == "2.3.0" and both.version == "2.3.0"
    assert partner.endpoint("locations", "RECEIVER") == f"{both.base}/2.3.0/locations"
    # It PUT nothing on 2.2.1: our POST went to its 2.3.0 credentials endpoint.
    assert [r["path"] for r in both.requests_to("credentials", "POST")] == [
        "/ocpi/emsp/2.3.0/credentials"
    ]


def test_a_2_2_1_partner_moves_to_2_3_0_by_a_credentials_update_it_sends(live_server, stubs):
    stub = stubs()
    partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="Old")
    versions_url = f"{live_server.url}/ocpi/versions"
    stub.register_with(versions_url, token_a)
    partner.refresh_from_db()
    registered_at, pk = partner.registered_at, partner.pk
    old_token = stub.our_token_at_cpo
    # A session PUT still waits, written in 2.2.1 when the partner moves.
    Delivery.objects.create(
        partner=partner,
        module="sessions",
        object_key="session:1",
        method="PUT",
        path="/NL/EVB/1",
        body={"id": "1", "total_cost": {"excl_vat": 4.5, "incl_vat": 5.45}},
        next_attempt_at=partner.registered_at,
    )

    stub.versions = ("2.2.1", "2.3.0")  # it learned 2.3.0
    answer = stub.update_to_newest()
    spec_types.check(answer["data"], "credentials_credentials_object")  # our 2.3.0 answer

    partner.refresh_from_db()
    assert (partner.pk, partner.version, partner.state) == (pk, "2.3.0", Partner.State.CONNECTED)
    assert partner.registered_at >= registered_at
    assert partner.endpoint("sessions", "RECEIVER") == f"{stub.base}/2.3.0/sessions"
    assert partner.outgoing_token == stub.cpo_token  # its new token B
    # The old token is dead, the new one works; the waiting push is now a 2.3.0 Session.
    assert stub.request("GET", versions_url, token=old_token)[0] == 401
    assert stub.request("GET", versions_url)[0] == 200
    waiting = Delivery.objects.get(partner=partner, object_key="session:1")
    assert waiting.body["total_cost"] == {
        "before_taxes": 4.5,
        "taxes": [{"name": "VAT", "amount": 0.95}],
    }


def test_we_move_a_2_2_1_partner_to_2_3_0_and_one_that_offers_nothing_newer_stays(
    live_server, stubs
):
    stub = stubs()
    ours = f"{live_server.url}/ocpi/versions"
    partner = services.partner_connect(
        organization=OrganizationFactory(),
        name="Old",
        versions_url=stub.versions_url,
        token_a=stub.token_a,
        our_versions_url=ours,
    )
    assert partner.version == "2.2.1"
    with pytest.raises(services.RegistrationError) as refused:
        services.partner_version_update(partner=partner, our_versions_url=ours)
    assert refused.value.code == ocpi.Code.UNSUPPORTED_VERSION
    partner.refresh_from_db()
    assert partner.version == "2.2.1" and partner.state == Partner.State.CONNECTED

    stub.versions = ("2.2.1", "2.3.0")
    token_before = partner.outgoing_token
    moved = services.partner_version_update(partner=partner, our_versions_url=ours)

    assert (moved.pk, moved.version) == (partner.pk, "2.3.0")
    assert stub.version == "2.3.0"
    assert moved.outgoing_token != token_before and moved.outgoing_token == stub.cpo_token
    assert [r["path"] for r in stub.requests_to("credentials", "PUT")] == [
        "/ocpi/emsp/2.3.0/credentials"
    ]
    # It calls us with the token it got in the update.
    assert stub.request("GET", ours)[0] == 200


def test_an_update_the_partner_refuses_leaves_it_as_it_was(live_server, stubs):
    stub = stubs()
    ours = f"{live_server.url}/ocpi/versions"
    partner = services.partner_connect(
        organization=OrganizationFactory(),
        name="Old",
        versions_url=stub.versions_url,
        token_a=stub.token_a,
        our_versions_url=ours,
    )
    before = Partner.objects.values("version", "endpoints", "incoming_token_hash").get(
        pk=partner.pk
    )
    stub.versions = ("2.2.1", "2.3.0")
    stub.refuse_credentials = True

    with pytest.raises(services.RegistrationError):
        services.partner_version_update(partner=partner, our_versions_url=ours)

    after = Partner.objects.values("version", "endpoints", "incoming_token_hash").get(pk=partner.pk)
    assert after == before
    # It still calls us with the token it had.
    assert stub.request("GET", ours)[0] == 200
    assert "Registration failed" in Partner.objects.get(pk=partner.pk).last_error


class Hub230(EmspStub):
    """A 2.3.0 platform with hub functionality: it names its hub party and lists the parties it
    reaches as roles (credentials "Credentials object", hub_party_id)."""

    COUNTRY_CODE, PARTY_ID = "EU", "HUB"

    def our_credentials(self, token: str) -> dict:
        roles = [
            {
                "role": "EMSP",
                "country_code": cc,
                "party_id": pid,
                "business_details": {"name": name},
            }
            for cc, pid, name in (("FR", "ABC", "Abc Mobility"), ("BE", "XYZ", "Xyz Charge"))
        ]
        return {"token": token, "url": self.versions_url, "hub_party_id": "EUHUB", "roles": roles}


def test_a_2_3_0_hub_names_its_hub_party_and_routes_the_parties_it_lists(live_server, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    hub = Hub230(versions=("2.3.0",))
    try:
        partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="Hub")
        hub.register_with(f"{live_server.url}/ocpi/versions", token_a)
    finally:
        hub.close()
    partner.refresh_from_db()
    assert (partner.role, partner.country_code, partner.party_id) == ("HUB", "EU", "HUB")
    routed = HubParty.objects.filter(partner=partner).values_list(
        "msp__country_code", "msp__party_id"
    )
    assert sorted(routed) == [("BE", "XYZ"), ("FR", "ABC")]
    names = HubParty.objects.filter(partner=partner).values_list("msp__name", flat=True)
    assert sorted(names) == ["Abc Mobility", "Xyz Charge"]
    assert {r["party_id"] for r in partner.roles} == {"ABC", "XYZ"}


def test_a_payment_terminal_provider_must_speak_2_3_0(client, operator):
    partner, token_a = services.partner_invite(organization=operator["org"], name="PTP")
    body = {
        "token": "ptp-token-b",
        "url": "https://ptp.example/ocpi/versions",
        "roles": [
            {
                "role": "PTP",
                "country_code": "AT",
                "party_id": "PTP",
                "business_details": {"name": "Pay"},
            }
        ],
    }
    answer = client.post(
        "/ocpi/2.2.1/credentials",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token_a),
    ).json()
    assert answer["status_code"] == 3003 and "2.3.0" in answer["status_message"]
    partner.refresh_from_db()
    assert partner.state == Partner.State.PENDING


@pytest.mark.django_db(transaction=True)
def test_a_partner_that_moves_gets_every_location_again_in_2_3_0(live_server, stubs, operator):
    """After the move it holds our locations in 2.3.0's shapes (parking places, help phone),
    not only those that change later; a 2.2.1 Location PUT still waiting is replaced."""
    place = ParkingPlace.objects.create(
        property=operator["public"], vehicle_types=["PERSONAL_VEHICLE", "DISABLED"]
    )
    ParkingEvse.objects.create(parking=place, charger=operator["cp_public"])
    LocationProfile.objects.filter(property=operator["public"]).update(help_phone="+31 30 1234")
    stub = stubs()
    partner, token_a = services.partner_invite(organization=operator["org"], name="Old")
    stub.register_with(f"{live_server.url}/ocpi/versions", token_a)
    location_id = str(operator["public"].pk)
    services.location_push_queue(property_id=operator["public"].pk)
    Delivery.objects.filter(partner=partner).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    (waiting,) = Delivery.objects.filter(partner=partner, status="pending", module="locations")
    assert "parking_places" not in waiting.body  # written in 2.2.1

    stub.versions = ("2.2.1", "2.3.0")
    stub.update_to_newest()

    waiting.refresh_from_db()
    assert waiting.body["parking_places"][0]["vehicle_types"] == ["PERSONAL_VEHICLE", "DISABLED"]
    assert waiting.body["help_phone"] == "+31 30 1234"
    spec_types.check(waiting.body, "mod_locations_location_object")
    assert Delivery.objects.filter(partner=partner, module="locations").count() == 1
    assert waiting.path == f"/NL/EVB/{location_id}"


@pytest.mark.parametrize("hub_party_id", ["EUHU", "EUHUB1", "EU HB", 12345])
def test_a_hub_party_id_that_is_not_five_characters_is_refused(hub_party_id):
    body = {
        "token": "hub-token-b",
        "url": "https://hub.example/ocpi/versions",
        "hub_party_id": hub_party_id,
        "roles": [
            {
                "role": "EMSP",
                "country_code": "FR",
                "party_id": "ABC",
                "business_details": {"name": "Abc"},
            }
        ],
    }
    with pytest.raises(services.RegistrationError) as refused:
        services.parse_credentials(body, version=ocpi.V230)
    assert refused.value.code == ocpi.Code.INVALID_PARAMETERS
    assert "hub_party_id" in refused.value.message
    # 2.2.1 has no such field: a partner's unknown field is not refused there.
    assert services.parse_credentials(body, version=ocpi.V221).party.party_id == "ABC"
