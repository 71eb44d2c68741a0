"""A host asks the Help panel why a card was refused at their charger (seeds 001 and 002).

The answer names the card, the charger, when and the reason from the records (who blocked it,
which list it is not in, when it expired, which chargers it may use) and the host's fix with its
portal path; "what do I do about it?" gets the fix again. A guest keeps the guest's answer, and a
host never learns about another organization's card or charger.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from authorization.decisions import Context
from authorization.services import decide_cached, decision_record
from chargers.sessions.services import charger_facts
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    MspFactory,
    PropertyFactory,
    TokenFactory,
    TokenGroupFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/support/assistant/"
GUEST_STEP = "Make sure you are signed in"


def ask(client, message, conversation=None, **context):
    response = client.post(
        URL, {"message": message, "conversation": conversation, "context": context}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def present(charger, uid, context=Context.LOCAL):
    """The card presented at the charger, decided and recorded as the OCPP handlers do."""
    decision, token = decide_cached(uid=uid, charger=charger_facts(charger), context=context)
    assert not decision.accepted
    return decision_record(
        decision=decision,
        uid=uid,
        token_id=token.pk if token else None,
        organization_id=charger.property.organization_id,
        station_id=charger.station_id,
        connector_id=1,
        context=context,
    )


@pytest.fixture
def station(db):
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    return ChargerFactory(property=prop, station_id="HB-7")


@pytest.fixture
def host_client(api_client, station):
    api_client.force_authenticate(
        MembershipFactory(organization=station.property.organization).user
    )
    return api_client


def test_a_card_the_host_blocked_is_named_with_charger_time_reason_and_the_tokens_fix(
    host_client, station
):
    token = TokenFactory(uid="04A1B2C3D4", organization=station.property.organization, blocked=True)
    at = present(station, "04A1B2C3D4").created_at.strftime("%H:%M")
    answer = ask(host_client, "Why was card 04A1B2C3D4 refused at my charger?")
    reply = answer["reply"]
    assert reply.startswith(
        f"Card 04A1B2C3D4 was refused at HB-7 (Harbour Hotel) at {at} (Blocked)"
    )
    assert "your organization blocked this card" in reply
    assert f"Cards & roaming › Tokens › 04A1B2C3D4 (/tokens/{token.pk}/), untick Blocked" in reply
    assert "Chargers › View › Logs (/chargers/HB-7/logs/), search for idTag 04A1B2C3D4" in reply
    assert "the Authorize's idTagInfo status is Blocked" in reply
    assert GUEST_STEP not in reply and "This sounds like" not in reply
    assert answer["asks_for"] == []  # the charger and the property came from the records

    again = ask(host_client, "What do I do about it?", conversation=answer["conversation"])
    assert again["topic"] == "no_permission"
    assert "untick Blocked and save" in again["reply"]
    assert "You have tried what I suggested" not in again["reply"]
    assert GUEST_STEP not in again["reply"]


def test_a_card_blocked_by_its_provider_is_not_said_to_be_the_hosts(host_client, station):
    msp = MspFactory(organization=station.property.organization, name="ChargeNet")
    TokenFactory(uid="04B0B0B0B0", organization=None, msp=msp, blocked=True)
    present(station, "04B0B0B0B0")
    reply = ask(host_client, "why was card 04B0B0B0B0 rejected?")["reply"]
    assert "blocked by its mobility provider ChargeNet, not by you" in reply
    assert "untick Blocked" not in reply


def test_a_card_not_in_the_chargers_local_group_names_the_group_and_add_token(host_client, station):
    org = station.property.organization
    group = TokenGroupFactory(organization=org, name="Residents")
    station.token_groups.add(group)
    TokenFactory(uid="04C1C1C1C1", organization=org)
    present(station, "04C1C1C1C1", Context.START_TRANSACTION)
    reply = ask(host_client, "card 04C1C1C1C1 refused at HB-7, why?")["reply"]
    assert "HB-7 accepts only the cards of its local token groups (Residents)" in reply
    assert f"Tokens › Groups › Residents (/tokens/groups/{group.pk}/), type 04C1C1C1C1" in reply
    assert "click Add Token" in reply
    assert "the StartTransaction's idTagInfo status is Invalid" in reply


def test_an_unknown_card_says_it_is_not_in_the_list_and_where_to_add_it(host_client, station):
    present(station, "04D1D1D1D1")
    reply = ask(host_client, "Why was card 04D1D1D1D1 refused at my charger?")["reply"]
    assert "the card is not in your Tokens list and no mobility provider claims it" in reply
    assert "add it under Cards & roaming › Tokens (/tokens/)" in reply
    assert "Authorization › Roaming (/authorization/roaming/)" in reply


def test_an_expired_card_says_since_when_and_to_extend_it(host_client, station):
    expired = timezone.now() - timedelta(days=3)
    TokenFactory(uid="04E1E1E1E1", organization=station.property.organization, expires_at=expired)
    present(station, "04E1E1E1E1")
    reply = ask(host_client, "why was card 04E1E1E1E1 refused")["reply"]
    assert f"the card's validity expired on {expired.date().isoformat()}" in reply
    assert "extend Expires at" in reply


def test_a_card_of_a_provider_the_host_blocked_points_to_mobility_providers(host_client, station):
    msp = MspFactory(organization=station.property.organization, name="ChargeNet", blocked=True)
    TokenFactory(uid="04F1F1F1F1", organization=None, msp=msp)
    present(station, "04F1F1F1F1")
    reply = ask(host_client, "why was card 04F1F1F1F1 refused")["reply"]
    assert "belongs to ChargeNet, a mobility provider your organization has blocked" in reply
    assert "Mobility Providers (/mobility-providers/) and click Unblock beside ChargeNet" in reply


def test_a_reimbursement_card_says_which_chargers_it_may_use(host_client, station):
    TokenFactory(
        uid="04A2A2A2A2",
        organization=station.property.organization,
        allowed_station_ids=["HOME-1"],
    )
    present(station, "04A2A2A2A2")
    reply = ask(host_client, "why was card 04A2A2A2A2 refused")["reply"]
    assert "no access to this charger: it may charge only at HOME-1" in reply
    assert (
        f"add HB-7 to its allowed stations under Locations › Harbour Hotel (/locations/{station.property_id}/)"
        in reply
    )


def test_a_host_naming_no_card_gets_the_fixes_of_the_refusals_found(host_client, station):
    TokenFactory(uid="04A1B2C3D4", organization=station.property.organization, blocked=True)
    present(station, "04A1B2C3D4")
    reply = ask(host_client, "why was a card refused at my charger?")["reply"]
    assert "untick Blocked and save" in reply and GUEST_STEP not in reply


def test_another_organizations_card_and_charger_are_never_told(host_client, station):
    other = ChargerFactory(station_id="FOREIGN-1", property=PropertyFactory(name="Other Inn"))
    TokenFactory(uid="04A3A3A3A3", organization=other.property.organization, blocked=True)
    present(other, "04A3A3A3A3")
    answer = ask(host_client, "Why was card 04A3A3A3A3 refused at my charger?")
    said = answer["reply"] + " ".join(answer["facts"])
    assert "I found no refusal of card 04A3A3A3A3 at HB-7 in the last 30 days" in said
    assert "FOREIGN-1" not in said and "Other Inn" not in said and "(Blocked)" not in said
    assert "Chargers › View › Logs (/chargers/HB-7/logs/), search for idTag 04A3A3A3A3" in said
    assert GUEST_STEP not in said  # a host's way to look, not the guest's steps

    named = ask(host_client, "Why was card 04A3A3A3A3 refused?", station_id="FOREIGN-1")
    said = named["reply"] + " ".join(named["facts"])
    # Only what its guest page tells anyone who names a card there: no card, no host's fix.
    assert "04A3A3A3A3" not in said and "Other Inn" not in said and "/tokens/" not in said
    assert GUEST_STEP in said


def test_a_guest_keeps_the_guest_answer(api_client, station):
    TokenFactory(uid="04A1B2C3D4", organization=station.property.organization, blocked=True)
    present(station, "04A1B2C3D4")
    answer = ask(api_client, "Why was card 04A1B2C3D4 refused?", station_id="HB-7")
    assert GUEST_STEP in answer["reply"]
    assert "/tokens/" not in answer["reply"] and "untick" not in answer["reply"]
    assert "Your card was refused here" in " ".join(answer["facts"])


def test_a_card_named_by_an_idtag_that_is_not_hex_gets_the_hosts_answer(host_client, station):
    # OCPP's idTag is any text: a fob printed "EMP-0042" is asked about by that name.
    at = present(station, "EMP-0042").created_at.strftime("%H:%M")
    reply = ask(host_client, "Why was card EMP-0042 refused at HB-7?")["reply"]
    assert reply.startswith(f"Card EMP-0042 was refused at HB-7 (Harbour Hotel) at {at}"), reply
    assert GUEST_STEP not in reply
