"""C01 Authorize: the same authorization engine, its decision in 2.0.1 idTokenInfo words, recorded."""

import pytest
from asgiref.sync import sync_to_async

from authorization.models import AuthorizationDecision

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)


async def authorize(client, uid: str, token_type: str = "ISO14443") -> list:
    return await client.call("Authorize", {"idToken": {"idToken": uid, "type": token_type}})


async def test_known_token_is_accepted_and_recorded(charger, token):
    client = await connect201()
    reply = await authorize(client, "04A1B2C3")
    assert reply[0] == 3 and reply[2] == {"idTokenInfo": {"status": "Accepted"}}
    decision = await AuthorizationDecision.objects.aget(uid="04A1B2C3")
    assert decision.status == "Accepted" and decision.ocpp_unique_id == reply[1]
    assert decision.station_id == "CP-TEST-1" and decision.context == "local"
    await client.close()


async def test_unknown_token_is_unknown_with_the_recorded_reason(charger, token):
    client = await connect201()
    reply = await authorize(client, "DEADBEEF")
    assert reply[2] == {"idTokenInfo": {"status": "Unknown"}}
    decision = await AuthorizationDecision.objects.aget(uid="DEADBEEF")
    assert decision.reason == "unknown_token" and decision.message  # "Why Invalid?" for the host
    await client.close()


async def test_blocked_token_is_blocked(charger, token):
    token.blocked = True
    await token.asave()
    client = await connect201()
    assert (await authorize(client, "04A1B2C3"))[2] == {"idTokenInfo": {"status": "Blocked"}}
    await client.close()


async def test_id_token_type_outside_the_enum_is_a_property_violation(charger, token):
    client = await connect201()
    reply = await authorize(client, "04A1B2C3", token_type="Magic")
    assert reply[0] == 4 and reply[2] == "PropertyConstraintViolation"
    await client.close()


async def test_cards_of_one_group_are_told_their_group(charger, token):
    """C09.FR.02: idTokenInfo carries the card's groupIdToken (Authorize and TransactionEvent)."""
    from tests.factories import TokenFactory

    await sync_to_async(TokenFactory)(
        uid="GROUPED-1", organization=token.organization, parent_id_tag="FAMILY"
    )
    client = await connect201()
    answer = await client.result(
        "Authorize", {"idToken": {"idToken": "GROUPED-1", "type": "ISO14443"}}
    )
    assert answer["idTokenInfo"] == {
        "status": "Accepted",
        "groupIdToken": {"idToken": "FAMILY", "type": "Central"},
    }
    answer = await client.result(
        "TransactionEvent", tx_event("Started", 0, "TX-G", id_token="GROUPED-1", wh=0)
    )
    assert answer["idTokenInfo"]["groupIdToken"]["idToken"] == "FAMILY"
    assert (
        "groupIdToken"
        not in (
            await client.result(
                "Authorize", {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}}
            )
        )["idTokenInfo"]
    )
    await client.close()
