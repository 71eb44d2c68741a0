"""The proxy's configuration (issue 13): API contract and tenancy, one Leader, the portal's Proxy
tab and Logs filter, and the pure rules the links apply."""

import pytest
from django.urls import reverse

from authorization.models import AuthorizationDecision
from backoffice.sealed import unseal
from chargers.models import Charger, OcppMessage
from chargers.proxy import rules
from chargers.proxy import services as proxy_services
from chargers.proxy.models import Backoffice
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/chargers/{}/backoffices/"


@pytest.fixture
def owner_api(api_client, host):
    api_client.force_authenticate(host)
    return api_client


def test_api_creates_lists_and_hides_the_password(owner_api, charger):
    created = owner_api.post(
        URL.format(charger.station_id),
        {
            "name": "Acme CSMS",
            "url": "wss://acme.example/ocpp",
            "password": "acme-secret-123",
            "role": "leader",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == {
        "id",
        "name",
        "url",
        "role",
        "allowed_actions",
        "status",
        "last_error",
        "connected_at",
        "last_message_at",
    }
    assert (
        body["status"] == "disconnected" and "RemoteStartTransaction" in body["allowed_actions"]
    )  # Leader: all
    stored = Backoffice.objects.get(pk=body["id"])
    assert (
        unseal(stored.password_sealed) == "acme-secret-123"
        and "acme-secret" not in stored.password_sealed
    )
    assert Charger.objects.get(pk=charger.pk).proxied

    follower = owner_api.post(
        URL.format(charger.station_id),
        {
            "name": "Beta",
            "url": "ws://beta.example:9000/steve/websocket/CentralSystemService",
        },
        format="json",
    ).json()
    assert (
        follower["role"] == "follower" and follower["allowed_actions"] == []
    )  # a follower may send nothing
    listed = owner_api.get(URL.format(charger.station_id)).json()
    assert [b["name"] for b in listed] == ["Acme CSMS", "Beta"]
    assert all("password" not in b for b in listed)


def test_making_one_leader_demotes_the_previous(owner_api, charger):
    acme = proxy_services.backoffice_save(
        charger, name="Acme", url="ws://a.example/ocpp", role="leader"
    )
    beta = proxy_services.backoffice_save(charger, name="Beta", url="ws://b.example/ocpp")
    r = owner_api.patch(
        f"{URL.format(charger.station_id)}{beta.pk}/", {"role": "leader"}, format="json"
    )
    assert r.status_code == 200
    assert Backoffice.objects.get(pk=beta.pk).role == "leader"
    assert Backoffice.objects.get(pk=acme.pk).role == "follower"
    # Back to this system as Leader: no upstream leads.
    proxy_services.backoffice_make_leader(None, charger=charger)
    assert not Backoffice.objects.filter(charger=charger, role="leader").exists()


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "X", "url": "https://not-a-websocket.example"}, "url"),
        (
            {"name": "X", "url": "ws://x.example/ocpp/CP-TEST-1"},
            "url",
        ),  # the station id is appended by us
        (
            {"name": "X", "url": "ws://x.example/ocpp", "allowed_actions": ["Reboot"]},
            "allowed_actions",
        ),
        ({"name": "", "url": "ws://x.example/ocpp"}, "name"),
        ({"name": "X", "url": "ws://x.example/ocpp", "role": "boss"}, "role"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(owner_api, charger, payload, field):
    r = owner_api.post(URL.format(charger.station_id), payload, format="json")
    assert r.status_code == 400 and field in r.json()
    assert not Backoffice.objects.exists() and not Charger.objects.get(pk=charger.pk).proxied


def test_other_organizations_and_readers(api_client, charger):
    theirs = ChargerFactory(property=PropertyFactory(), station_id="THEIRS-1")
    foreign = proxy_services.backoffice_save(
        theirs, name="Theirs", url="ws://t.example/ocpp", password="their-secret-1"
    )
    reader = MembershipFactory(organization=charger.property.organization, role="viewer").user
    api_client.force_authenticate(reader)
    assert api_client.get(URL.format("THEIRS-1")).status_code == 404
    assert (
        api_client.get(f"{URL.format(charger.station_id)}{foreign.pk}/").status_code == 404
    )  # not this charger's
    assert api_client.get(URL.format(charger.station_id)).status_code == 200
    r = api_client.post(
        URL.format(charger.station_id), {"name": "X", "url": "ws://x.example/ocpp"}, format="json"
    )
    assert r.status_code == 403 and not Backoffice.objects.filter(charger=charger).exists()
    owner = MembershipFactory(organization=charger.property.organization, role="owner").user
    api_client.force_authenticate(owner)
    assert (
        api_client.patch(
            f"{URL.format('THEIRS-1')}{foreign.pk}/", {"role": "leader"}, format="json"
        ).status_code
        == 404
    )
    assert api_client.delete(f"{URL.format(charger.station_id)}{foreign.pk}/").status_code == 404
    assert Backoffice.objects.get(pk=foreign.pk).role == "follower"


def test_removing_the_last_backoffice_stops_proxying(owner_api, charger):
    only = proxy_services.backoffice_save(charger, name="Acme", url="ws://a.example/ocpp")
    assert owner_api.delete(f"{URL.format(charger.station_id)}{only.pk}/").status_code == 204
    assert not Charger.objects.get(pk=charger.pk).proxied


# -- the portal ------------------------------------------------------------------------------------


def test_proxy_tab_add_make_leader_remove(client, host, charger):
    client.force_login(host)
    page = client.get(reverse("chargers:charger-proxy", args=[charger.station_id]))
    assert page.status_code == 200 and "(this system)" in page.content.decode()
    r = client.post(
        reverse("chargers:charger-proxy-add", args=[charger.station_id]),
        {
            "name": "Acme CSMS",
            "url": "ws://acme.example/ocpp",
            "password": "acme-secret-123",
            "role": "follower",
            "allowed_actions": ["RemoteStartTransaction", "Reset"],
        },
    )
    assert r.status_code == 302
    acme = Backoffice.objects.get(charger=charger)
    assert acme.allowed_actions == ["RemoteStartTransaction", "Reset"]
    client.post(
        reverse("chargers:charger-proxy-leader", args=[charger.station_id]), {"backoffice": acme.pk}
    )
    assert Backoffice.objects.get(pk=acme.pk).role == "leader"
    html = client.get(reverse("chargers:charger-proxy", args=[charger.station_id])).content.decode()
    assert "Acme CSMS" in html and "all (Leader)" in html
    state = client.get(reverse("chargers:charger-proxy-state", args=[charger.station_id])).json()
    assert [(r["id"], r["leader"]) for r in state["rows"]] == [(None, False), (acme.pk, True)]
    # Editing without a password keeps the stored one.
    client.post(
        reverse("chargers:charger-proxy-edit", args=[charger.station_id, acme.pk]),
        {"name": "Acme", "url": "ws://acme.example/ocpp", "password": "", "role": "leader"},
    )
    assert unseal(Backoffice.objects.get(pk=acme.pk).password_sealed) == "acme-secret-123"
    client.post(reverse("chargers:charger-proxy-delete", args=[charger.station_id, acme.pk]))
    assert not Backoffice.objects.exists()


def test_proxy_tab_is_read_only_for_viewers_and_hidden_from_others(client, charger):
    acme = proxy_services.backoffice_save(charger, name="Acme", url="ws://a.example/ocpp")
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    client.force_login(viewer)
    assert (
        client.get(reverse("chargers:charger-proxy", args=[charger.station_id])).status_code == 200
    )
    r = client.post(
        reverse("chargers:charger-proxy-leader", args=[charger.station_id]), {"backoffice": acme.pk}
    )
    assert r.status_code == 403 and Backoffice.objects.get(pk=acme.pk).role == "follower"
    stranger = MembershipFactory(organization=PropertyFactory().organization, role="owner").user
    client.force_login(stranger)
    assert (
        client.get(reverse("chargers:charger-proxy", args=[charger.station_id])).status_code == 404
    )
    r = client.post(reverse("chargers:charger-proxy-delete", args=[charger.station_id, acme.pk]))
    assert r.status_code == 404 and Backoffice.objects.filter(pk=acme.pk).exists()


def test_logs_show_one_backoffice_or_only_the_charger_link(client, host, charger):
    acme = proxy_services.backoffice_save(charger, name="Acme CSMS", url="ws://a.example/ocpp")
    common = {
        "charger": charger,
        "message_type": 2,
        "unique_id": "u1",
        "action": "Authorize",
        "id_tag": "CAFE",
    }
    OcppMessage.objects.create(direction="in", payload={"idTag": "CAFE"}, **common)
    OcppMessage.objects.create(
        direction="out", backoffice_id=acme.pk, payload={"idTag": "CAFE"}, **common
    )
    OcppMessage.objects.create(
        charger=charger,
        direction="in",
        message_type=3,
        unique_id="u1",
        backoffice_id=acme.pk,
        payload={"idTagInfo": {"status": "Invalid"}},
    )
    client.force_login(host)
    url = reverse("chargers:charger-logs", args=[charger.station_id])
    only_acme = client.get(url, {"link": str(acme.pk)}).content.decode()
    assert "Acme CSMS" in only_acme and "idTagInfo: Invalid" in only_acme
    only_charger = client.get(url, {"link": "charger"}).content.decode()
    assert "⬅ charger" in only_charger and "➡ Acme CSMS" not in only_charger


def test_decision_reads_both_verdicts():
    decision = AuthorizationDecision(
        uid="X",
        station_id="S",
        context="local",
        status="Accepted",
        reason="accepted_group",
        step=3,
        message="m",
        leader_name="Acme CSMS",
        leader_status="Invalid",
        leader_answered=True,
    )
    assert (
        decision.leader_summary
        == "Leader Acme CSMS answered Invalid; this system would accept (accepted_group)"
    )
    decision.leader_answered = False
    assert decision.leader_summary.startswith(
        "Leader Acme CSMS did not answer in time; this system answered Accepted"
    )


# -- pure rules ------------------------------------------------------------------------------------


def test_transaction_ids_are_rewritten_per_party():
    to_party = {5001: 9001}.get
    meter = {"connectorId": 1, "transactionId": 5001, "meterValue": []}
    assert rules.rewrite_for_party("MeterValues", meter, to_party)["transactionId"] == 9001
    assert meter["transactionId"] == 5001  # the charger's frame is not changed for the others
    assert rules.rewrite_for_party("StopTransaction", {"transactionId": 7}, to_party) == {
        "transactionId": 7
    }
    assert rules.rewrite_for_party("Heartbeat", {}, to_party) == {}
    to_charger = {9001: 5001}.get
    assert rules.rewrite_for_charger(
        "RemoteStopTransaction", {"transactionId": 9001}, to_charger
    ) == {"transactionId": 5001}
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {"transactionId": 9001, "chargingProfileId": 1},
    }
    assert (
        rules.rewrite_for_charger("SetChargingProfile", profile, to_charger)["csChargingProfiles"][
            "transactionId"
        ]
        == 5001
    )
    assert profile["csChargingProfiles"]["transactionId"] == 9001


@pytest.mark.parametrize(
    "action, payload",
    [
        ("RemoteStopTransaction", {"transactionId": 10**30}),
        ("RemoteStopTransaction", {"transactionId": True}),
        ("RemoteStopTransaction", {"transactionId": "9001"}),
        ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": "x"}),
        ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": [{"transactionId": 1}]}),
        ("SetChargingProfile", {"csChargingProfiles": {"transactionId": -(2**40)}}),
        ("RemoteStopTransaction", ["not", "an", "object"]),
    ],
)
def test_an_upstream_call_with_no_usable_transaction_id_is_forwarded_as_sent(action, payload):
    """An upstream backoffice's CALL is the charger's to judge: what holds no 32-bit
    transactionId is neither looked up nor rewritten (a `csChargingProfiles` that is no object
    raised in the relay task, and the upstream never got an answer), and a charger frame alike."""
    looked_up = []
    assert rules.party_ids_in(action, payload) == []
    assert rules.rewrite_for_charger(action, payload, looked_up.append) is payload
    assert rules.charger_ids_in("StopTransaction", {"transactionId": 2**63}) == []
    assert looked_up == []


@pytest.mark.parametrize(
    "action, payload",
    [
        ("ChangeConfiguration", {"key": "AuthorizationKey", "value": "0011"}),
        ("ChangeConfiguration", {"key": "SecurityProfile", "value": "0"}),
        ("SetNetworkProfile", {"configurationSlot": 1, "connectionData": {}}),
        (
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"},
                        "attributeValue": "x",
                    }
                ]
            },
        ),
    ],
)
def test_no_upstream_may_take_the_charger_away(action, payload):
    allowed, why = rules.upstream_may_send("leader", [], action, payload)
    assert not allowed and "not allowed through this proxy" in why


def test_followers_send_only_what_is_allowed():
    assert rules.upstream_may_send("follower", [], "Reset", {"type": "Soft"})[0] is False
    assert rules.upstream_may_send("follower", ["Reset"], "Reset", {"type": "Soft"})[0] is True
    assert rules.upstream_may_send("leader", [], "Reset", {"type": "Soft"})[0] is True
    assert rules.upstream_may_send(
        "leader", [], "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}
    )[0]


@pytest.mark.parametrize(
    "upstream_first", [True, False], ids=["follower-answers-first", "ours-first"]
)
def test_every_partys_transaction_id_is_linked_to_our_session_whatever_the_order(
    charger, upstream_first
):
    from chargers.models import ChargingSession
    from chargers.proxy.models import ProxyTransaction

    beta = proxy_services.backoffice_save(charger, name="Beta", url="ws://b.example/ocpp")
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        id_tag="CAFE0001",
        started_at="2026-11-22T10:00:00Z",
        meter_start_wh=0,
        transaction_id=4242,
    )
    ours = {
        "charger_id": charger.pk,
        "backoffice_id": None,
        "charger_transaction_id": 5001,
        "transaction_id": 4242,
    }
    theirs = {
        "charger_id": charger.pk,
        "backoffice_id": beta.pk,
        "charger_transaction_id": 5001,
        "transaction_id": 9001,
    }
    for record in [theirs, ours] if upstream_first else [ours, theirs]:
        proxy_services.transaction_map_record(**record)
    linked = {
        (row.backoffice_id, row.transaction_id, row.session_id)
        for row in ProxyTransaction.objects.all()
    }
    assert linked == {(None, 4242, session.pk), (beta.pk, 9001, session.pk)}
