"""The credentials handshake both ways, over real HTTP with an independent eMSP."""

import json

import pytest

from authorization.models import MobilityServiceProvider
from roaming import ocpi, services
from roaming.models import OcpiLog, Partner
from tests.factories import OrganizationFactory
from tests.roaming.emsp_stub import EmspStub


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the stub listens on loopback
    emsp = EmspStub()
    yield emsp
    emsp.close()


def test_partner_registers_with_our_token_a_and_then_only_token_c_works(live_server, stub):
    partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="Stub")
    versions_url = f"{live_server.url}/ocpi/versions"

    answer = stub.register_with(versions_url, token_a)

    token_c = answer["data"]["token"]
    assert answer["data"]["roles"][0]["role"] == "CPO"
    partner.refresh_from_db()
    assert partner.state == Partner.State.CONNECTED
    assert (partner.country_code, partner.party_id, partner.role) == ("DE", "EMS", "EMSP")
    # We keep the stub's token B to call it, and only hashes of the tokens we verify.
    assert partner.outgoing_token == stub.cpo_token
    assert partner.incoming_token_hash == ocpi.token_hash(token_c)
    assert partner.token_a_hash == ""
    assert token_c not in json.dumps(
        [str(v) for v in Partner.objects.values().get(pk=partner.pk).values()]
    )
    # The partner is the operator's MSP for its party.
    msp = MobilityServiceProvider.objects.get(pk=partner.msp_id)
    assert (msp.organization_id, msp.country_code, msp.party_id) == (
        partner.organization_id,
        "DE",
        "EMS",
    )
    assert msp.live_validation_url == stub.base + "/2.2.1/tokens"
    # Token A is thrown away; token C works.
    status, body, _ = stub.request("GET", versions_url, token=token_a)
    assert status == 401 and body["status_code"] == 2000
    status, body, _ = stub.request("GET", versions_url, token=token_c)
    assert status == 200 and body["data"][0]["version"] == "2.2.1"


def test_we_register_with_a_partner_from_its_versions_url_and_token_a(live_server, stub):
    organization = OrganizationFactory()

    partner = services.partner_connect(
        organization=organization,
        name="Stub",
        versions_url=stub.versions_url,
        token_a=stub.token_a,
        our_versions_url=f"{live_server.url}/ocpi/versions",
    )

    assert partner.state == Partner.State.CONNECTED
    # The stub answered its token C; it called our versions with the token B we sent it.
    assert partner.outgoing_token == stub.cpo_token and stub.cpo_token.startswith("stub-token-c-")
    assert partner.incoming_token_hash == ocpi.token_hash(stub.our_token_at_cpo)
    assert ("credentials", "SENDER") in stub.cpo_endpoints
    assert partner.endpoint("locations", "RECEIVER") == stub.base + "/2.2.1/locations"
    # And it can call us with that token B from now on.
    status, body, _ = stub.request("GET", stub.cpo_endpoints[("credentials", "SENDER")])
    assert status == 200 and body["data"]["token"] == stub.our_token_at_cpo
    # Both directions are in the log, without the tokens.
    rows = OcpiLog.objects.filter(partner=partner)
    assert {row.direction for row in rows} == {"in", "out"}
    assert stub.our_token_at_cpo not in json.dumps(
        [r.request_body for r in rows] + [r.response_body for r in rows]
    )


def test_registration_fails_with_3001_when_the_partner_versions_cannot_be_read(live_server, stub):
    partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="Stub")
    url = f"{live_server.url}/ocpi/2.2.1/credentials"
    body = stub.our_credentials("stub-token-b-x")
    body["url"] = stub.base + "/nowhere"

    status, answer, _ = stub.request("POST", url, body, token=token_a)

    assert status == 200 and answer["status_code"] == 3001
    partner.refresh_from_db()
    assert partner.state == Partner.State.PENDING


def test_post_when_registered_and_put_when_not_are_405_and_delete_unregisters(live_server, stub):
    partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="Stub")
    url = f"{live_server.url}/ocpi/2.2.1/credentials"

    status, _, _ = stub.request("PUT", url, stub.our_credentials("stub-token-b-1"), token=token_a)
    assert status == 405
    stub.register_with(f"{live_server.url}/ocpi/versions", token_a)
    status, _, _ = stub.request("POST", url, stub.our_credentials("stub-token-b-2"))
    assert status == 405

    # PUT: new endpoints fetched, a new token C issued, the old one stops working.
    old_token = stub.our_token_at_cpo
    status, answer, _ = stub.request("PUT", url, stub.our_credentials(stub.cpo_token))
    assert status == 200 and answer["status_code"] == 1000
    new_token = answer["data"]["token"]
    assert new_token != old_token
    assert stub.request("GET", url, token=old_token)[0] == 401
    assert stub.request("GET", url, token=new_token)[0] == 200

    status, answer, _ = stub.request("DELETE", url, token=new_token)
    assert status == 200 and answer["status_code"] == 1000
    partner.refresh_from_db()
    assert partner.state == Partner.State.UNREGISTERED and partner.outgoing_token == ""
    assert stub.request("GET", url, token=new_token)[0] == 401


def test_a_partner_that_refuses_our_registration_leaves_no_partner_behind(live_server, stub):
    stub.refuse_credentials = True
    organization = OrganizationFactory()

    with pytest.raises(services.RegistrationError) as refused:
        services.partner_connect(
            organization=organization,
            name="Stub",
            versions_url=stub.versions_url,
            token_a=stub.token_a,
            our_versions_url=f"{live_server.url}/ocpi/versions",
        )

    assert "2001" in refused.value.message
    assert not Partner.objects.filter(organization=organization).exists()


class _OddVersions(EmspStub):
    """A partner whose versions list or version details are not the shapes OCPI gives them."""

    versions_data: object = None
    details_data: object = None

    def route(self, handler, method, path, body, presented):
        rel = path[len("/ocpi/emsp") :]
        if rel == "/versions":
            data = self.versions_data
            handler._ok(
                data if data is not None else [{"version": "2.2.1", "url": f"{self.base}/2.2.1"}]
            )
        else:
            handler._ok(self.details_data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "versions, details",
    [
        ({"version": "2.2.1"}, None),
        (5, None),
        (None, [{"identifier": "credentials", "url": "https://x.example/c"}]),
        (None, "endpoints"),
        (None, {"version": "2.2.1", "endpoints": 5}),
        (None, {"version": "2.2.1", "endpoints": {"credentials": "https://x.example/c"}}),
        # Text no column keeps (the versions offered and the endpoints are stored).
        (
            [
                {"version": "2.2.1", "url": "https://x.example/2.2.1"},
                {"version": "9\u0000", "url": "https://x.example/v"},
            ],
            None,
        ),
        (
            None,
            {
                "endpoints": [
                    {"identifier": "credentials", "url": "https://x.example/c"},
                    {"identifier": "tokens\ud800", "url": "https://x.example/t"},
                ]
            },
        ),
    ],
)
def test_versions_answers_of_the_wrong_shape_are_3001_not_a_server_error(
    settings, versions, details
):
    """Registration reads the partner's versions list and version details: a list where an
    object belongs (or the other way round) is the partner's unusable API (3001/3003), never an
    AttributeError that the partner's POST of its credentials sees as our 500."""
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    odd = _OddVersions()
    odd.versions_data, odd.details_data = versions, details
    odd.token_a = "odd-token"
    try:
        with pytest.raises(services.RegistrationError) as refused:
            services.fetch_endpoints(partner=None, versions_url=odd.versions_url, token="odd-token")
        assert refused.value.code in (3001, 3002, 3003)
    finally:
        odd.close()


def test_a_partner_that_lost_our_answer_to_its_registration_is_recovered_by_renewing(
    client, live_server, stub, settings, operator
):
    """The partner POSTed its credentials and we registered it, but our answer (its token C)
    never reached it. Its retry with token A is a 401 (token A is spent: transport_and_format,
    credentials "POST"). The operator's *Renew credentials* on the partner's page sends it a
    credentials PUT with the token B it gave us (credentials "Updating the credentials and
    resetting the credentials token"): it reads our new token there, and calls us with it."""
    from tests.factories import MembershipFactory

    partner, token_a = services.partner_invite(organization=operator["org"], name="Stub")
    versions_url = f"{live_server.url}/ocpi/versions"
    stub.register_with(versions_url, token_a)
    lost = stub.our_token_at_cpo
    stub.our_token_at_cpo = None  # the answer never arrived

    retry, body, _ = stub.request(
        "POST",
        stub.cpo_endpoints[("credentials", "SENDER")],
        stub.our_credentials(stub.cpo_token),
        token=token_a,
    )
    assert (retry, body["status_code"]) == (401, 2000)
    assert Partner.objects.get(pk=partner.pk).state == Partner.State.CONNECTED

    owner = MembershipFactory(organization=operator["org"], role="owner").user
    client.force_login(owner)
    settings.SITE_URL = live_server.url  # the versions URL we give it in the update
    page = client.post(
        f"/roaming/partners/{partner.pk}/version-update/", {"renew": "1"}, follow=True
    ).content.decode()

    assert "Stub took new credentials (OCPI 2.2.1)" in page
    renewed = stub.our_token_at_cpo
    assert renewed and renewed != lost
    # It calls us with the token it read in our PUT; the one it never read is dead.
    status, answer, _ = stub.request("GET", stub.cpo_endpoints[("locations", "SENDER")])
    assert (status, answer["status_code"]) == (200, 1000)
    assert [location["id"] for location in answer["data"]] == [str(operator["public"].pk)]
    assert stub.request("GET", versions_url, token=lost)[0] == 401
    # We call it with the token it answered.
    partner.refresh_from_db()
    assert partner.outgoing_token == stub.cpo_token and partner.version == "2.2.1"


def test_renewing_needs_no_newer_version_and_a_refusal_keeps_the_tokens(
    client, live_server, stub, settings, operator
):
    """Without `renew` a partner that offers nothing newer is refused, as before; a partner
    that refuses the renewal keeps calling us with its token, and we it with ours."""
    from tests.factories import MembershipFactory

    partner, token_a = services.partner_invite(organization=operator["org"], name="Stub")
    versions_url = f"{live_server.url}/ocpi/versions"
    stub.register_with(versions_url, token_a)
    owner = MembershipFactory(organization=operator["org"], role="owner").user
    client.force_login(owner)
    settings.SITE_URL = live_server.url
    url = f"/roaming/partners/{partner.pk}/version-update/"
    assert "stays on OCPI 2.2.1" in client.post(url, follow=True).content.decode()

    stub.refuse_credentials = True
    before = Partner.objects.values("outgoing_token", "incoming_token_hash").get(pk=partner.pk)
    refused = client.post(url, {"renew": "1"}, follow=True).content.decode()
    assert "Stub keeps its credentials" in refused
    assert Partner.objects.values("outgoing_token", "incoming_token_hash").get(pk=partner.pk) == (
        before
    )
    status, _, _ = stub.request("GET", stub.cpo_endpoints[("locations", "SENDER")])
    assert status == 200
