"""Chargers > View > Logs: pairing, idTagInfo badges, search, keyset paging, live fragment, whitelist."""

import pytest
from django.urls import reverse

from authorization.decisions import Context
from authorization.services import decide_sync
from chargers.models import OcppMessage
from chargers.sessions.services import charger_facts

pytestmark = pytest.mark.django_db


def _logs(site, query=""):
    return reverse("chargers:charger-logs", args=[site.charger.station_id]) + query


def test_a_call_and_its_result_are_one_entry_with_status_badge_idtag_and_decision_link(
    client, site
):
    client.force_login(site.viewer)
    response = client.get(_logs(site))
    entries = response.context["entries"]
    authorize = [e for e in entries if e["action"] == "Authorize"]
    assert len(authorize) == 1
    entry = authorize[0]
    assert entry["call_type"] == "CALL" and entry["answer_type"] == "CALLRESULT"
    assert entry["status"] == "Invalid" and entry["rejected"]
    assert entry["id_tag"] == "DEADBEEF"
    assert entry["decision"] == site.decision
    body = response.content.decode()
    assert "idTagInfo: Invalid" in body
    assert reverse("chargers:decision-detail", args=[site.decision.pk]) in body
    assert "&quot;idTag&quot;: &quot;DEADBEEF&quot;" in body  # pretty-printed JSON, escaped


def test_search_by_action_name_and_by_idtag(client, site):
    client.force_login(site.owner)
    OcppMessage.objects.create(
        charger=site.charger,
        direction="in",
        message_type=2,
        unique_id="s1",
        action="StartTransaction",
        id_tag="AA11",
        payload={"connectorId": 1, "idTag": "AA11", "meterStart": 0, "timestamp": "x"},
    )
    OcppMessage.objects.create(
        charger=site.charger,
        direction="out",
        message_type=3,
        unique_id="s1",
        action="StartTransaction",
        payload={"transactionId": 7, "idTagInfo": {"status": "Accepted"}},
    )
    # Seed 001 says "type StartTransaction": the card messages come together, so the Authorize
    # that refused DEADBEEF (which never got to StartTransaction) is listed too.
    entries = client.get(_logs(site, "?q=StartTransaction")).context["entries"]
    assert [e["action"] for e in entries] == ["StartTransaction", "Authorize"]
    assert entries[0]["status"] == "Accepted" and entries[0]["id_tag"] == "AA11"
    assert entries[1]["status"] == "Invalid" and entries[1]["id_tag"] == "DEADBEEF"
    entries = client.get(_logs(site, "?q=DEADBEEF")).context["entries"]
    assert [e["action"] for e in entries] == ["Authorize"]
    # The answer is not among the matches (it carries no idTag) but is found next to the CALL.
    assert entries[0]["status"] == "Invalid" and entries[0]["answer"] is not None
    entries = [
        e
        for e in client.get(_logs(site, "?direction=out&q=Authorize")).context["entries"]
        if e["action"] == "Authorize"
    ]
    assert entries[0]["call"].direction == "in" and entries[0]["status"] == "Invalid"
    assert client.get(_logs(site, "?q=Heartbeat&direction=out")).context["entries"] == []


def test_paging_is_by_keyset_and_newest_first(client, site):
    client.force_login(site.owner)
    OcppMessage.objects.bulk_create(
        [
            OcppMessage(
                charger=site.charger,
                direction="in",
                message_type=2,
                unique_id=f"h{i}",
                action="Heartbeat",
                payload={},
            )
            for i in range(120)
        ]
    )
    first = client.get(_logs(site, "?q=Heartbeat"))
    rows = first.context["entries"]
    assert len(rows) == 50
    ids = [e["call"].id for e in rows]
    assert ids == sorted(ids, reverse=True)
    older = first.context["older_url"]
    assert older.startswith("?") and f"before={ids[-1]}" in older
    second = client.get(_logs(site, older)).context["entries"]
    assert second[0]["call"].id < ids[-1]
    assert not client.get(_logs(site, older)).context["live"]


def test_live_fragment_renders_only_new_rows_matching_the_filters(client, site):
    client.force_login(site.owner)
    latest = OcppMessage.objects.filter(charger=site.charger).latest("id").id
    OcppMessage.objects.create(
        charger=site.charger,
        direction="in",
        message_type=2,
        unique_id="n1",
        action="Authorize",
        id_tag="NEW1",
        payload={"idTag": "NEW1"},
    )
    OcppMessage.objects.create(
        charger=site.charger,
        direction="in",
        message_type=2,
        unique_id="n2",
        action="Heartbeat",
        payload={},
    )
    response = client.get(_logs(site, f"?after={latest}&q=Authorize"))
    body = response.content.decode()
    assert "NEW1" in body and "Heartbeat" not in body and "DEADBEEF" not in body
    assert int(response["X-Latest-Id"]) > latest


def test_whitelisting_a_rejected_uid_makes_the_next_authorize_accepted(client, site):
    facts = charger_facts(site.charger)
    assert decide_sync(uid="DEADBEEF", charger=facts, context=Context.LOCAL).status == "Invalid"
    client.force_login(site.manager)
    back = _logs(site, "?q=Authorize")
    response = client.post(
        reverse("chargers:charger-whitelist", args=[site.charger.station_id]),
        {"uid": "DEADBEEF", "group": site.group.pk, "next": back},
    )
    assert response.status_code == 302 and response["Location"] == back
    assert site.group.tokens.filter(uid="DEADBEEF").exists()
    assert decide_sync(uid="DEADBEEF", charger=facts, context=Context.LOCAL).status == "Accepted"


def test_whitelist_refuses_a_group_of_another_organization_and_unsafe_redirects(
    client, site, other
):
    client.force_login(site.owner)
    url = reverse("chargers:charger-whitelist", args=[site.charger.station_id])
    response = client.post(
        url, {"uid": "DEADBEEF", "group": other.group.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == _logs(site)
    assert not other.group.tokens.filter(uid="DEADBEEF").exists()
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("not whitelisted" in m for m in messages)


def test_unanswered_calls_and_unreadable_frames_are_shown(client, site):
    client.force_login(site.owner)
    OcppMessage.objects.create(
        charger=site.charger,
        direction="out",
        message_type=2,
        unique_id="c9",
        action="Reset",
        payload={"type": "Hard"},
    )
    OcppMessage.objects.create(
        charger=site.charger,
        direction="in",
        message_type=None,
        unique_id="",
        action="",
        payload=None,
        raw="not json",
    )
    body = client.get(_logs(site)).content.decode()
    assert "no answer yet" in body and "not json" in body and "(unreadable frame)" in body


def test_whitelist_warns_when_the_card_is_still_refused_here(client, site):
    from tests.factories import TokenGroupFactory

    # The charger only takes cards of its own group: whitelisting into another group does not help.
    restricted = TokenGroupFactory(organization=site.org, name="Charger group")
    site.charger.token_groups.add(restricted)
    client.force_login(site.owner)
    response = client.post(
        reverse("chargers:charger-whitelist", args=[site.charger.station_id]),
        {"uid": "DEADBEEF", "group": site.group.pk},
        follow=True,
    )
    body = response.content.decode()
    assert "is now in the local token group" in body and "It is still refused here" in body
