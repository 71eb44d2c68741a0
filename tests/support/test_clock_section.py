"""The Help panel's clock section: a question about a charger's wrong clock, in any of the usual
words, is answered in a section of its own (its steps: our BootNotification and Heartbeat answers
carry the time, set the time or NTP in the charger's menu, restart it, the "charger clock wrong"
mark under Chargers > View > Logs, sessions still timed and billed right), and a follow-up stays
there. Before, these went to "plugged in but not charging" and its steps (push the connector in,
restart the session). A question without those words is not put there.

The charger's clock is made wrong for real (a StatusNotification dated 1970 over OCPP, as in
tests/support/test_clock_wrong_assistant.py); every question goes through the assistant's API.
A guest and a host of another organization get the section's guest step and none of the facts
they are not told today.
"""

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from chargers.plumbing import background
from chargers.state import quirks as quirks_state
from tests.bounds import GENEROUS_S
from tests.factories import MembershipFactory
from tests.ocpp_client import OcppTestClient

URL = "/api/v1/support/assistant/"
CLOCK = "charger_clock"
# What the host's clock answer says: its steps, and the fact about the charger.
HOST_STEPS = (
    "our answers to its BootNotification and Heartbeat carry the current time",
    "set its date and time, or turn on its NTP (network time) setting",
    "Restart the charger",
    "Check Chargers › View › Logs (/chargers/CP-TEST-1/logs/): the messages that carried an "
    'impossible time are marked "charger clock wrong"',
    "its sessions are still timed and billed right",
)
# The "plugged in but not charging" section's steps, which these questions got before.
NOT_CHARGING_STEPS = ("Push the connector fully into the car", "Restart the session")


async def _clock_sent_1970(station_id: str) -> None:
    quirks_state.forget()
    client = OcppTestClient(station_id)
    assert (await client.connect())[0]
    await client.result(
        "StatusNotification",
        {
            "connectorId": 1,
            "status": "Available",
            "errorCode": "NoError",
            "timestamp": "1970-01-01T00:00:42Z",
        },
    )
    await background.drain(GENEROUS_S)
    await client.close()
    quirks_state.forget()


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _ask(client: APIClient, message: str, conversation: str | None = None, **context) -> dict:
    response = client.post(
        URL,
        {"message": message, "conversation": conversation, "context": context},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@sync_to_async
def _host_conversations(host) -> None:
    client = _client(host)
    for question, context in (
        ("the charger's time is wrong", {"station_id": "CP-TEST-1"}),
        ("why does the log say charger clock wrong on CP-TEST-1?", {}),
        ("CP-TEST-1's clock shows 1970", {}),
        ("Charger CP-TEST-1 shows strange times in its sessions, what is wrong with it?", {}),
        ("the date on the charger is wrong", {"station_id": "CP-TEST-1"}),
        ("my wallbox thinks it's 1970", {}),  # no charger named: the one of theirs that fits
    ):
        answer = _ask(client, question, **context)
        assert answer["topic"] == CLOCK, (question, answer)
        reply = answer["reply"]
        assert reply.startswith("This sounds like: The charger's clock"), (question, reply)
        assert all(step in reply for step in HOST_STEPS), (question, reply)
        assert not any(step in reply for step in NOT_CHARGING_STEPS), (question, reply)
        clock = [fact for fact in answer["facts"] if "CP-TEST-1's clock is wrong" in fact]
        assert len(clock) == 1 and "'1970-01-01T00:00:42Z'" in clock[0], (question, answer)

    # A follow-up after a clock answer stays in the clock section.
    first = _ask(client, "the charger's time is wrong", station_id="CP-TEST-1")
    for follow_up in ("how do I fix it?", "what do I do?", "where is that setting?"):
        answer = _ask(client, follow_up, first["conversation"])
        assert answer["topic"] == CLOCK, (follow_up, answer)
        assert not any(step in answer["reply"] for step in NOT_CHARGING_STEPS), answer
    again = _ask(client, "how do I fix it?", first["conversation"])
    assert all(step in again["reply"] for step in HOST_STEPS), again["reply"]
    # A new problem in the same conversation goes to its own section.
    moved = _ask(client, "the car stopped charging after an hour", first["conversation"])
    assert moved["topic"] == "not_charging", moved
    # And the clock's words move a conversation of another section to the clock section.
    back = _ask(client, "also its clock shows 1970, why?", first["conversation"])
    assert back["topic"] == CLOCK, back


@pytest.mark.django_db(transaction=True)
async def test_a_host_asking_about_the_clock_gets_the_clock_section_and_stays_there(charger, host):
    await _clock_sent_1970(charger.station_id)
    await _host_conversations(host)


@sync_to_async
def _others_conversations() -> None:
    stranger = MembershipFactory().user  # a host of another organization
    for client in (_client(), _client(stranger)):
        answer = _ask(client, "the charger's clock shows 1970", station_id="CP-TEST-1")
        assert answer["topic"] == CLOCK, answer
        text = answer["reply"] + " ".join(answer["facts"])
        assert "sessions are timed and billed from when the charger's messages reach us" in text
        assert "Connector 1 is Available (free)." in answer["facts"]  # the guest page's facts
        assert "clock is wrong" not in text and "1970-01-01" not in text
        assert "/chargers/CP-TEST-1/logs/" not in text and "NTP" not in text
        follow_up = _ask(client, "how do I fix it?", answer["conversation"])
        assert follow_up["topic"] == CLOCK
        assert "clock is wrong" not in follow_up["reply"] + " ".join(follow_up["facts"])


@pytest.mark.django_db(transaction=True)
async def test_a_guest_and_another_organization_hear_no_more_about_the_charger(charger, host):
    await _clock_sent_1970(charger.station_id)
    await _others_conversations()


@pytest.mark.django_db
def test_questions_without_clock_words_go_elsewhere(charger, host):
    client = _client(host)
    for question in (
        "not charging",
        "my car is not charging",
        "it stopped charging at 9 o'clock",
        "every time I plug in it stops after a minute",
        "the session took a long time and nothing happened",
        "the charger is offline",
    ):
        answer = _ask(client, question, station_id="CP-TEST-1")
        assert answer["topic"] != CLOCK, (question, answer)
        assert "clock" not in answer["reply"].lower(), (question, answer)


@pytest.mark.django_db
def test_a_charger_whose_clock_sent_nothing_wrong_is_said_so(charger, host):
    answer = _ask(_client(host), "the charger's clock is wrong", station_id="CP-TEST-1")
    assert answer["topic"] == CLOCK
    assert any(
        fact.startswith("Charger CP-TEST-1 has sent no impossible time in the last 7 days")
        for fact in answer["facts"]
    ), answer
