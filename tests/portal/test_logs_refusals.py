"""Issue 17: the Logs lead a host to a card's refusal whichever message carried it (seed 001),
and whitelisting from a log row can use any of the host's groups or a new one."""

import pytest
from django.urls import reverse

from authorization.decisions import Context
from authorization.models import AuthorizationDecision, TokenGroup
from authorization.services import decide_sync
from chargers.models import OcppMessage
from chargers.sessions.services import charger_facts

pytestmark = pytest.mark.django_db


def _logs(site, query=""):
    return reverse("chargers:charger-logs", args=[site.charger.station_id]) + query


def _pair(charger, uid, action, call, answer, direction_in="in"):
    OcppMessage.objects.create(
        charger=charger,
        direction=direction_in,
        message_type=2,
        unique_id=uid,
        action=action,
        id_tag=call.get("idTag") or call.get("idToken", {}).get("idToken", ""),
        payload=call,
    )
    OcppMessage.objects.create(
        charger=charger,
        direction="out",
        message_type=3,
        unique_id=uid,
        action=action,
        payload=answer,
    )


@pytest.fixture
def card_log(site):
    """CAFE01 accepted at Authorize then StartTransaction; BAD02 refused at StartTransaction
    (offline authorization by the charger); a 2.0.1 idTokenInfo refusal; DEADBEEF refused at
    Authorize (the site's own rows)."""
    ch = site.charger
    _pair(ch, "a1", "Authorize", {"idTag": "CAFE01"}, {"idTagInfo": {"status": "Accepted"}})
    _pair(
        ch,
        "s1",
        "StartTransaction",
        {"connectorId": 1, "idTag": "CAFE01", "meterStart": 0, "timestamp": "x"},
        {"transactionId": 1, "idTagInfo": {"status": "Accepted"}},
    )
    _pair(
        ch,
        "s2",
        "StartTransaction",
        {"connectorId": 1, "idTag": "BAD02", "meterStart": 0, "timestamp": "x"},
        {"transactionId": 2, "idTagInfo": {"status": "Blocked"}},
    )
    _pair(
        ch,
        "t1",
        "Authorize",
        {"idToken": {"idToken": "V2CARD", "type": "ISO14443"}},
        {"idTokenInfo": {"status": "Unknown"}},
    )
    _pair(
        ch,
        "t2",
        "Authorize",
        {"idToken": {"idToken": "V2OK", "type": "ISO14443"}},
        {"idTokenInfo": {"status": "Accepted"}},
    )
    return site


def test_search_by_uid_shows_the_authorize_and_the_start_transaction_carrying_it(client, card_log):
    client.force_login(card_log.viewer)
    entries = client.get(_logs(card_log, "?q=CAFE01")).context["entries"]
    assert [e["action"] for e in entries] == ["StartTransaction", "Authorize"]
    assert all(e["id_tag"] == "CAFE01" and e["status"] == "Accepted" for e in entries)


def test_invalid_only_lists_every_refusal_with_the_message_that_carried_the_card(client, card_log):
    client.force_login(card_log.viewer)
    response = client.get(_logs(card_log, "?invalid=on"))
    entries = response.context["entries"]
    found = {(e["action"], e["id_tag"], e["status"]) for e in entries}
    assert found == {
        ("Authorize", "DEADBEEF", "Invalid"),
        ("StartTransaction", "BAD02", "Blocked"),
        ("Authorize", "V2CARD", "Unknown"),
    }
    assert all(e["rejected"] and e["call"] is not None for e in entries)
    assert 'name="invalid"' in response.content.decode() and "checked" in response.content.decode()


def test_seed_001_path_typing_start_transaction_with_invalid_only_finds_the_authorize_refusal(
    client, card_log
):
    client.force_login(card_log.viewer)
    response = client.get(_logs(card_log, "?q=StartTransaction&invalid=on"))
    entries = response.context["entries"]
    assert {(e["action"], e["id_tag"]) for e in entries} == {
        ("Authorize", "DEADBEEF"),
        ("StartTransaction", "BAD02"),
        ("Authorize", "V2CARD"),
    }
    assert "a card refused at Authorize never sends a StartTransaction" in response.content.decode()


def test_invalid_only_with_a_uid_keeps_that_card(client, card_log):
    client.force_login(card_log.viewer)
    entries = client.get(_logs(card_log, "?invalid=on&q=BAD02")).context["entries"]
    assert [(e["action"], e["status"]) for e in entries] == [("StartTransaction", "Blocked")]
    assert client.get(_logs(card_log, "?invalid=on&q=CAFE01")).context["entries"] == []


def test_live_fragment_respects_invalid_only(client, card_log):
    client.force_login(card_log.viewer)
    before = OcppMessage.objects.order_by("-id").first().id
    _pair(
        card_log.charger,
        "n1",
        "Authorize",
        {"idTag": "NEW1"},
        {"idTagInfo": {"status": "Accepted"}},
    )
    _pair(
        card_log.charger, "n2", "Authorize", {"idTag": "NEW2"}, {"idTagInfo": {"status": "Expired"}}
    )
    entries = client.get(_logs(card_log, f"?invalid=on&after={before}")).context["entries"]
    assert [(e["id_tag"], e["status"]) for e in entries] == [("NEW2", "Expired")]


def test_whitelist_offers_every_group_restricting_ones_first_and_a_new_group(client, site):
    restricting = TokenGroup.objects.create(organization=site.org, name="Zeta residents")
    site.charger.token_groups.add(restricting)
    client.force_login(site.owner)
    body = client.get(_logs(site)).content.decode()
    assert body.index("Zeta residents (restricts this charger)") < body.index(
        f">{site.group.name}<"
    )
    assert "New group…" in body and 'name="new_group"' in body


def test_whitelist_into_a_new_group(client, site):
    client.force_login(site.manager)
    url = reverse("chargers:charger-whitelist", args=[site.charger.station_id])
    response = client.post(
        url, {"uid": "DEADBEEF", "group": "", "new_group": " Visitors "}, follow=True
    )
    group = TokenGroup.objects.get(organization=site.org, name="Visitors")
    assert group.tokens.filter(uid="DEADBEEF").exists()
    assert "is now in the new local token group “Visitors”" in response.content.decode()
    # The charger is not restricted, so the card (now the host's own) is accepted here.
    assert decide_sync(
        uid="DEADBEEF", charger=charger_facts(site.charger), context=Context.LOCAL
    ).accepted
    # The same name twice is refused, nothing else changes; neither a name nor a group is refused.
    client.post(url, {"uid": "OTHER1", "group": "", "new_group": "visitors"})
    assert not TokenGroup.objects.filter(organization=site.org, tokens__uid="OTHER1").exists()
    response = client.post(url, {"uid": "OTHER1", "group": "", "new_group": ""}, follow=True)
    assert "Choose a group or type a name" in response.content.decode()


def test_whitelist_new_group_refused_for_viewers_and_other_organizations(client, site, other):
    url = reverse("chargers:charger-whitelist", args=[site.charger.station_id])
    client.force_login(site.viewer)
    assert client.post(url, {"uid": "X1", "new_group": "Sneaky"}).status_code == 403
    client.force_login(other.owner)
    assert client.post(url, {"uid": "X1", "new_group": "Sneaky"}).status_code == 404
    assert not TokenGroup.objects.filter(name="Sneaky").exists()


def test_guest_page_refuses_guests_at_a_charger_restricted_to_local_groups_and_records_it(
    client, site
):
    from tests.guest.conftest import make_online

    make_online(site.charger)
    site.charger.token_groups.add(site.group)
    response = client.get(reverse("guest:landing", args=[site.charger.station_id]))
    body = response.content.decode()
    assert "Not allowed to use this charger" in body
    assert "reserved for residents or registered guests" in body
    recorded = AuthorizationDecision.objects.filter(station_id=site.charger.station_id, uid="GUEST")
    assert [(d.reason, d.context, d.status) for d in recorded] == [
        ("not_in_local_group", "remote_app", "Invalid")
    ]
    client.get(reverse("guest:landing", args=[site.charger.station_id]))
    assert recorded.count() == 1  # once per charger and reason in 10 minutes, not per visit


def test_invalid_only_shows_a_refusal_by_the_upstream_leader_behind_the_proxy(client, site):
    """Seed 001: behind the proxy the Leader's answer is the one the charger follows."""
    from chargers.models import Backoffice

    upstream = Backoffice.objects.create(
        charger=site.charger, name="Employer CSMS", url="ws://upstream.example/ocpp"
    )
    OcppMessage.objects.create(
        charger=site.charger,
        direction="out",
        message_type=2,
        unique_id="p1",
        action="Authorize",
        id_tag="EMPLOYEE9",
        payload={"idTag": "EMPLOYEE9"},
        backoffice=upstream,
    )
    OcppMessage.objects.create(
        charger=site.charger,
        direction="in",
        message_type=3,
        unique_id="p1",
        action="Authorize",
        payload={"idTagInfo": {"status": "Blocked"}},
        backoffice=upstream,
    )
    client.force_login(site.viewer)
    entries = client.get(_logs(site, "?invalid=on&q=EMPLOYEE9")).context["entries"]
    assert [(e["action"], e["status"], e.get("backoffice")) for e in entries] == [
        ("Authorize", "Blocked", "Employer CSMS")
    ]
