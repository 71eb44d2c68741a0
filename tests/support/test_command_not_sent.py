"""A host whose command the portal did not send (the charger still owed the answer to an earlier
request, docs/ocpp.md) asks the Help panel why: it names the command, the request the charger
owed, and what to do; a guest hears nothing of it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.devices.commands import NOT_SENT, UNREACHABLE
from chargers.models import Command
from support.assistant.service import assistant_answer
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

WHY = "had not yet answered an earlier request (GetConfiguration)"


@pytest.fixture
def unsent(db):
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    now = timezone.now()
    charger = ChargerFactory(property=prop, station_id="HB-01", connection_id="c", last_seen_at=now)
    ChargerFactory(property=prop, station_id="HB-02", connection_id="d", last_seen_at=now)
    host = MembershipFactory(organization=prop.organization, role="manager").user
    error = f"{NOT_SENT} (GetConfiguration, sent 26 s before)."
    # The system's own (a power limit) is not the host's to ask about: never said.
    Command.objects.create(
        charger=charger, action="SetChargingProfile", status="timeout", error=error, source="csms"
    )
    command = Command.objects.create(
        charger=charger,
        action="Reset",
        payload={"type": "Soft"},
        status=Command.Status.TIMEOUT,
        error=error,
        source="portal",
        requested_by=host,
    )
    Command.objects.filter(source="csms").update(created_at=timezone.now())  # the newest
    return host, command


@pytest.mark.parametrize(
    "message",
    [
        "I pressed Reset on HB-01 and it says it was not sent",
        "reset didnt go through on HB-01",
        "why was my reboot not sent?",  # no charger named: the host's latest unsent command
    ],
)
def test_the_host_hears_why_the_command_was_not_sent_and_what_to_do(unsent, message):
    host, _ = unsent
    answer = assistant_answer(message=message, user=host)
    assert answer.topic == "charger_offline"
    said = " ".join(answer.facts)
    assert "Your Reset of " in said and f"HB-01 {WHY}" in said, answer.facts
    assert "wait a minute and send it again" in said and "restart it" in said
    assert "HB-02" not in said and "SetChargingProfile" not in said


def test_a_colleagues_unsent_command_is_named_as_theirs(unsent):
    host, command = unsent
    colleague = MembershipFactory(organization=command.charger.property.organization).user
    said = " ".join(assistant_answer(message="reset not sent on HB-01", user=colleague).facts)
    assert f"{host.get_username()}'s Reset of " in said and WHY in said


def test_an_hour_later_or_for_a_guest_it_is_not_said(unsent):
    host, command = unsent
    guest = assistant_answer(message="reset not sent on HB-01", station_id="HB-01")
    assert not any("was not sent" in fact for fact in guest.facts)
    Command.objects.filter(pk=command.pk).update(created_at=timezone.now() - timedelta(hours=2))
    later = assistant_answer(message="why was my reboot not sent?", user=host)
    assert not any(WHY in fact for fact in later.facts)
    assert "None of your chargers had a command left unsent in the last hour" in " ".join(
        later.facts
    )


def test_a_command_not_sent_because_our_message_service_was_away_is_explained(unsent):
    host, command = unsent
    # The channel layer (Redis) was restarting: nothing reached the charger (docs/ocpp.md).
    Command.objects.filter(pk=command.pk).update(error=UNREACHABLE)
    said = " ".join(assistant_answer(message="reset not sent on HB-01", user=host).facts)
    assert "Your Reset of " in said and "a service of ours was restarting" in said, said
    assert "nothing reached HB-01" in said and WHY not in said
