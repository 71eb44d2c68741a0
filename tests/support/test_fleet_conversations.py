"""Issue 47 item 3: a host asking from the dashboard, and every follow-up ending in a ticket.

Conversations as hosts and guests type them (typos kept), against live situations
(support/assistant/situations.py). Each phrasing is its own case so a miss names the sentence.
"""

import pytest

from support.assistant import situations
from support.assistant.service import assistant_answer
from support.models import Ticket

pytestmark = pytest.mark.django_db


def talk(situation, *messages, who="host", page=""):
    """Run a conversation; return the stage and each answer."""
    stage = situations.build(situation)
    user = stage.host if who == "host" else None
    key, answers = None, []
    for message in messages:
        answer = assistant_answer(message=message, conversation_key=key, station_id=page, user=user)
        key = answer.conversation
        answers.append(answer)
    return stage, answers


def text(answer):
    return (answer.reply + "\n" + "\n".join(answer.facts)).lower()


# -- 1. The fleet's live state answers a host who names no charger ---------------------------


@pytest.mark.parametrize(
    "message",
    [
        "one of my chargers shows faulted",
        "one of our chargers shows faulted on the dashboard",
        "dashboard says a charger is in fault??",
        "theres a faulty charger in my list, whats wrong with it",
        "got a red light blinking on one of the units, error state",
        "one charger says Faulted, what does that mean",
        "hey, which of my stations has an error?",
        "why is a charger showing a warning on my dashboard",
    ],
)
def test_a_fault_question_names_the_faulted_charger_not_the_offline_ones(message):
    _, (answer,) = talk("fleet", message)
    assert answer.topic != "payouts_reporting"
    assert answer.topic in ("charger_offline", "not_charging", "guest_start_error")
    said = text(answer)
    assert "hv-02" in said and "groundfailure" in said
    assert "hv-03" not in said and "hv-05" not in said  # offline ones are not the question
    assert answer.ticket is None


@pytest.mark.parametrize(
    "message",
    [
        "the charger is offline",
        "charger offline again!!",
        "my charger went offline this morning",
        "the unit is showing ofline in the portal",
    ],
)
def test_offline_without_a_name_lists_the_offline_ones_and_asks_which(message):
    _, (answer,) = talk("fleet", message)
    assert answer.topic == "charger_offline"
    said = text(answer)
    assert "hv-03" in said and "hv-05" in said
    assert "which one" in said
    assert "hv-02" not in said  # online, so not an answer to "offline"
    # No charger is claimed as "the" charger: nothing is said to be offline "since" of a pick.
    assert "the charger is offline right now, which explains it" not in said


def test_not_working_without_a_name_lists_the_faulted_and_offline_ones_and_asks_which():
    _, (answer,) = talk("fleet", "charger not working")
    said = text(answer)
    assert "hv-02 (faulted)" in said and "hv-03 (offline since" in said
    assert "hv-05 (never connected)" in said and "which one" in said


@pytest.mark.parametrize("message", ["the charger is offline", "charger seems to be ofline"])
def test_offline_with_one_offline_charger_says_which_one_it_is(message):
    _, (answer,) = talk("offline", message)
    said = text(answer)
    assert "hv-01" in said and "offline since" in said
    assert "you didn't name a charger" in said


@pytest.mark.parametrize("message", ["the charger is offline", "is one of my chargers offline?"])
def test_offline_when_none_is_offline_says_so_and_claims_none(message):
    _, (answer,) = talk("online", message)
    said = text(answer)
    assert "all your chargers are online" in said
    assert "has been offline" not in said


@pytest.mark.parametrize(
    "message",
    [
        "a guest says their card got declined a few minutes ago",
        "guest just called, card was refused at the charger",
        "my guest's credit card was rejected, can you check",
        "someone's card didnt get accepted just now",
    ],
)
def test_a_guests_declined_card_minutes_ago_is_found(message):
    _, (answer,) = talk("fleet", message)
    said = text(answer)
    assert "hv-01" in said
    assert "04a1b2c3d4e5f6" in said or "9995" in said
    assert "declined" in said or "refused" in said
    assert answer.topic != "payouts_reporting"


@pytest.mark.parametrize(
    "message",
    [
        "a guest says they were charged twice",
        "guest claims she got double charged",
        "customer sees two charges on his card for one session",
        "why was my guest billed twice??",
        "there's a duplicate charge from your system",
    ],
)
def test_charged_twice_explains_the_hold_without_asking_for_the_amount(message):
    _, (answer,) = talk("paid_session", message)
    assert answer.topic == "billing_dispute"
    said = text(answer)
    assert "20.00 eur" in said and "1.28 eur" in said
    assert "hold" in said and "released" in said
    assert "amount" not in answer.asks_for and "card_last4" not in answer.asks_for
    assert "tell me the amount" not in said
    assert answer.ticket is None  # explained, nothing for a person yet


def test_a_guest_charged_twice_with_nothing_to_find_the_payment_by_hears_about_the_hold():
    _, (answer,) = talk("paid_session", "i got charged twice!!", who="guest")
    said = text(answer)
    assert "hold" in said and "pre-authorization" in said and "released" in said
    assert answer.ticket is None


def test_charged_twice_follow_up_that_is_satisfied_opens_no_ticket():
    _, answers = talk(
        "paid_session", "guest says she was charged 2 times", "ah ok that makes sense, thanks"
    )
    assert [a.ticket for a in answers] == [None, None]
    assert Ticket.objects.count() == 0


def test_charged_twice_asked_for_a_refund_after_goes_to_a_person():
    _, answers = talk(
        "paid_session", "guest was double charged", "i still want a person to refund her"
    )
    assert answers[-1].ticket is not None
    ticket = Ticket.objects.get()
    assert ticket.details["card_last4"] == "4242" and "1.28" in ticket.details["amount"]


@pytest.mark.parametrize(
    ("message", "path"),
    [
        ("how do I remove my card", "/driver/cards/"),
        ("pls delete the credit card on my acount", "/driver/cards/"),
        ("i want to get rid of my saved visa", "/driver/cards/"),
    ],
)
def test_removing_a_card_is_answered_with_the_cards_page(message, path):
    _, (answer,) = talk("online", message, who="guest")
    assert answer.topic == "account_cancel"
    assert path in answer.reply
    assert "delete the account" not in answer.reply.lower()


@pytest.mark.parametrize(
    "message", ["how do I remove a card from our account", "pls delete this rfid card 04A1B2C3"]
)
def test_a_host_removing_a_card_is_told_the_tokens_page(message):
    _, (answer,) = talk("online", message)
    assert answer.topic == "account_cancel"
    assert "Tokens (/tokens/)" in answer.reply and "untick Valid" in answer.reply
    assert answer.ticket is None


@pytest.mark.parametrize(
    "message",
    [
        "how do i export a csv of my sessions",
        "can I download the sessions as a spreadsheet",
        "need an excel export for my accountant",
        "where's the annual statement",
    ],
)
def test_a_csv_request_is_answered_with_the_portal_path(message):
    _, (answer,) = talk("no_payouts", message)
    assert answer.topic == "payouts_reporting"
    assert "Sessions › Export CSV" in answer.reply
    assert "Payouts › Statements" in answer.reply
    assert answer.ticket is None


@pytest.mark.parametrize(
    "message",
    [
        "how do I connect guesty",
        "want to hook up Hospitable to my account",
        "can we integrate our PMS",
    ],
)
def test_connecting_a_pms_is_answered_with_the_pms_sync_page(message):
    _, (answer,) = talk("online", message)
    assert answer.topic == "charger_setup"
    assert "PMS sync › Connect a PMS" in answer.reply
    assert answer.ticket is None


@pytest.mark.parametrize(
    "message", ["please disconnect guesty", "we stopped using hospitable, remove the pms pls"]
)
def test_disconnecting_a_pms_is_answered_with_the_disconnect_button(message):
    # It went to a person while the portal had no disconnect.
    _, (answer,) = talk("pms_sync_error", message)
    assert answer.topic == "charger_setup"
    assert "PMS sync (/stays/integrations/) › open the PMS › Disconnect" in answer.reply
    assert "upcoming reservations are cancelled" in answer.reply
    assert answer.ticket is None and not Ticket.objects.exists()


# -- 2. Every follow-up with the details ends in a ticket; a person whenever asked ------------


@pytest.mark.parametrize(
    "follow_up",
    [
        "it was 1.28 eur on my card 4242 at Harbour View Garage yesterday",
        "Harbour View Garage, €1.28, visa ending 4242",
        "harbour view garage. 1,28 euros. card no 4242",
    ],
)
def test_a_billing_dispute_follow_up_with_amount_card_and_place_ends_in_a_ticket(follow_up):
    _, answers = talk(
        "paid_session", "I want my money back, this is a rip off", follow_up, who="guest"
    )
    ticket = Ticket.objects.get(pk=answers[-1].ticket)
    assert ticket.details["card_last4"] == "4242"
    assert "1" in ticket.details["amount"] and "28" in ticket.details["amount"]
    assert ticket.details["property"] == situations.PROPERTY
    assert "1.28" in ticket.details["diagnosis"]


@pytest.mark.parametrize(
    "messages",
    [
        ("guesty isnt syncing our bookings", "it's Harbour View Garage, guesty, yes its connected"),
        ("bookings from the PMS stopped coming through", "Harbour View Garage and it is Guesty"),
    ],
)
def test_a_pms_that_does_not_sync_ends_in_a_ticket_with_the_sync_error(messages):
    _, answers = talk("pms_sync_error", *messages)
    ticket = Ticket.objects.get(pk=answers[-1].ticket)
    assert "401" in ticket.details["diagnosis"]
    assert ticket.details["pms_name"]


@pytest.mark.parametrize(
    "messages",
    [
        ("payouts dont match what the dashboard says", "last month, 379.80, Harbour View Garage"),
        ("my payout is wrong", "october payout, should be 412.50 not 379.80"),
    ],
)
def test_payouts_that_do_not_match_end_in_a_ticket(messages):
    _, answers = talk("payout_failed", *messages)
    ticket = Ticket.objects.get(pk=answers[-1].ticket)
    assert ticket.details["amount"]
    assert "closed" in ticket.details["diagnosis"]


def test_a_bare_4242_after_being_asked_for_the_last_four_is_the_answer():
    _, answers = talk(
        "paid_session",
        "I was overcharged at Harbour View Garage, 1.28 eur",
        "4242",
        who="guest",
        page="",
    )
    assert "card_last4" in answers[0].asks_for
    assert "card_last4" not in answers[-1].asks_for
    assert answers[-1].ticket is not None
    assert Ticket.objects.get().details["card_last4"] == "4242"


def test_the_last_four_are_not_asked_for_when_the_facts_show_them():
    _, (answer,) = talk(
        "paid_session", "refund please, i paid 1.28 here", who="guest", page="HV-01"
    )
    assert "ending 4242" in text(answer)
    assert "card_last4" not in answer.asks_for


@pytest.mark.parametrize(
    "ask",
    [
        "I want a person to look at this",
        "talk to a human",
        "can i speak with someone please",
        "get me a real human",
        "i need somebody from support to check this",
        "pls escalate",
        "connect me to an agent",
        "tlak to a humna",
        "i want a persn to check it",
    ],
)
def test_asking_for_a_person_always_opens_a_ticket(ask):
    _, answers = talk("online", "my charger isnt working", ask, who="guest", page="HV-01")
    assert answers[-1].ticket is not None
    assert answers[-1].ticket_reference in answers[-1].reply


@pytest.mark.parametrize("ask", ["I want a person to look at this", "talk to a human pls"])
def test_asking_for_a_person_as_the_first_message_opens_a_ticket(ask):
    _, (answer,) = talk("online", ask)
    assert answer.ticket is not None


@pytest.mark.parametrize(
    "message",
    [
        "a new charger is missing from the network list",
        "I installed a charger but it's not showing in my network list",
        "cant find my new charger anywhere in the portal",
    ],
)
def test_a_charger_missing_from_the_network_list_is_the_one_that_never_connected(message):
    _, (answer,) = talk("fleet", message)
    assert answer.topic == "charger_setup"
    said = text(answer)
    assert "hv-05" in said and "never connected" in said


def test_a_missing_charger_when_all_have_connected_asks_for_its_station_id():
    _, (answer,) = talk("unassigned_charger", "my new charger isnt on the network list")
    said = text(answer)
    assert "every charger on your properties has connected" in said
    assert "station id" in said and "hv-09" not in said  # another org's may not be named


@pytest.mark.parametrize(
    "messages",
    [
        ("how do I export a csv of my sessions", "thanks, found it"),
        ("the charger is offline", "ok got it, thank you!"),
    ],
)
def test_a_conversation_the_answer_resolves_opens_no_ticket(messages):
    _, answers = talk("offline", *messages)
    assert all(a.ticket is None for a in answers)
    assert Ticket.objects.count() == 0


# -- Where a charger's logs are read (seed 001: Chargers > View > Logs) ------------------------


@pytest.mark.parametrize(
    "message",
    [
        "Where do I see my charger's logs?",
        "how do i find the OCPP logs",
        "where r the logs",
        "can I see the ocpp messages my charger sent",
        "is there a message log somewhere?",
    ],
)
def test_a_host_asking_where_the_logs_are_gets_the_path_alone(message):
    _, (answer,) = talk("online", message)
    assert "Chargers (/chargers/) › View on the charger › Logs" in answer.reply
    assert "What to do" not in answer.reply and "This sounds like" not in answer.reply
    assert answer.ticket is None and answer.asks_for == []


def test_asking_for_the_logs_mid_conversation_names_that_chargers_logs():
    _, (first, logs) = talk("offline", "why is HV-01 offline?", "and where do I see its logs?")
    assert "What to do" in first.reply
    assert "HV-01's logs: Chargers › View › Logs (/chargers/HV-01/logs/)" in logs.reply
    assert "You have tried" not in logs.reply
    assert logs.ticket is None


def test_a_guest_asking_for_logs_is_told_the_host_reads_them():
    _, (answer,) = talk("online", "where can I see the charger logs?", who="guest")
    assert "shown to its site host" in answer.reply
    assert "/chargers/" not in answer.reply  # a host's page, not the guest's


@pytest.mark.parametrize(
    "message",
    ["I can't log in to the app", "how do I log out", "my card was refused, the logs say Invalid"],
)
def test_signing_in_or_a_problem_that_mentions_logs_is_not_answered_with_the_path(message):
    _, (answer,) = talk("online", message)
    assert "› Logs" not in answer.reply


def test_asking_for_the_logs_keeps_the_conversation_on_its_section():
    _, (first, logs) = talk(
        "no_payouts", "how do i export a csv of my sessions", "where are the logs?"
    )
    assert first.topic == "payouts_reporting"
    assert logs.topic == "payouts_reporting"  # the question moves no conversation elsewhere
    assert "› Logs" in logs.reply and "What to do" not in logs.reply


# -- Firmware: the Fleet pages, with the host's campaigns as they stand ---------------------------


@pytest.mark.parametrize(
    "message",
    [
        "How do I update the firmware on all my chargers?",
        "where do I add the firmware file?",
        "can i upgrade my chargers software from here",
        "is there a way to push a fw update to the stations",
        "firmwear update?",
    ],
)
def test_a_firmware_question_is_answered_with_the_fleet_pages(message):
    _, (answer,) = talk("online", message)
    assert answer.topic == "charger_setup"
    assert "Fleet › Firmware releases (/fleet/releases/)" in answer.reply
    assert "New campaign" in answer.reply and "What to do" not in answer.reply
    assert answer.ticket is None


def test_the_hosts_running_campaign_and_why_a_charger_waits_are_said():
    from fleet.campaigns import services
    from fleet.models import CampaignTarget, FirmwareRelease

    stage = situations.build("online")
    charger = next(iter(stage.chargers.values()))
    organization = stage.organization
    release = FirmwareRelease.objects.create(
        organization=organization,
        vendor=charger.vendor or "Acme",
        version="9.9",
        location="https://fw.example/9.bin",
        sha256="0" * 64,
    )
    charger.vendor = release.vendor
    charger.save(update_fields=["vendor"])
    campaign = services.campaign_create(
        organization=organization,
        name="Spring update",
        release=release,
        selection=services.Selection(charger_ids=(charger.pk,)),
    )
    services.campaign_transition(campaign_id=campaign.pk, action="start")
    CampaignTarget.objects.filter(campaign=campaign).update(reason=services.WAIT_SESSION)
    answer = assistant_answer(
        message="how do I update firmware", conversation_key=None, station_id="", user=stage.host
    )
    assert (
        "“Spring update”" in answer.reply
        and "is running: 0 of 1 charger(s) updated" in answer.reply
    )
    assert "1 waiting (waiting: a charging session is open)" in answer.reply


def test_a_guest_asking_about_firmware_is_told_the_host_does_it():
    _, (answer,) = talk("online", "when will this charger get a firmware update?", who="guest")
    assert "site host or operator" in answer.reply and "/fleet/" not in answer.reply


def test_a_problem_after_a_firmware_update_is_diagnosed_not_answered_with_the_path():
    _, (answer,) = talk("offline", "HV-01 is offline since the firmware update")
    assert answer.topic == "charger_offline"
    assert "/fleet/releases/" not in answer.reply


# -- How-to questions a host asks: the page that does it, no steps, no ticket ---------------------


@pytest.mark.parametrize(
    "message, path",
    [
        ("how do I set prices for guests?", "Prices (/billing/prices/)"),
        ("can I change the idle fee", "Prices (/billing/prices/)"),
        ("how do I add a new charger?", "Locations (/locations/) › the location › Add charger"),
        ("how can we install another wallbox", "› Add charger"),
        ("can I limit the power of my site?", "Power (/power/)"),
        ("we need load balancing, our fuse is small", "Power (/power/)"),
        ("how do I give my staff free charging?", "Tokens (/tokens/)"),
        ("residents should charge for free, possible?", "Tokens (/tokens/)"),
        ("how do I change a configuration key on all my chargers?", "Configuration baselines"),
        ("set the heartbeat interval for every charger", "Configuration baselines"),
        ("can i print a new qr label", "Print QR label"),
        ("where do I get the QR code stickers?", "Print QR label"),
        ("email me when a charger goes offline", "Uptime (/uptime/) › Alerts"),
        ("how do I set up alerts", "Uptime (/uptime/) › Alerts"),
        ("when is the maintenance window for updates?", "Fleet › Firmware"),
    ],
)
def test_a_hosts_how_to_question_gets_the_page_that_does_it(message, path):
    _, (answer,) = talk("online", message)
    assert path in answer.reply, answer.reply
    assert "What to do" not in answer.reply and "This sounds like" not in answer.reply
    assert answer.ticket is None and answer.asks_for == []


@pytest.mark.parametrize(
    "message",
    [
        "I can't add the charger, it says invalid",
        "why did my price change?",
        "the charger won't connect after I set it up",
        "my card was charged a fee twice",
    ],
)
def test_a_problem_that_mentions_a_task_is_diagnosed_not_answered_with_a_page(message):
    _, (answer,) = talk("online", message)
    assert "/billing/prices/" not in answer.reply and "› Add charger" not in answer.reply


def test_a_guest_asking_how_prices_are_set_hears_the_host_sets_them():
    _, (answer,) = talk("online", "how do I change the price?", who="guest")
    assert "set by the charger's site host" in answer.reply and "/billing/" not in answer.reply


def test_asking_for_a_person_about_free_charging_still_opens_a_ticket():
    _, (answer,) = talk("online", "I want to talk to a person about free charging for our staff")
    assert answer.ticket is not None


@pytest.mark.parametrize(
    "message",
    ["how do I refund a guest?", "can I give a partial refund", "refund this session pls"],
)
def test_a_host_asking_how_to_refund_gets_the_refund_pages(message):
    _, (answer,) = talk("online", message)
    assert "› Refund…" in answer.reply and answer.ticket is None


def test_a_guest_asking_for_a_refund_is_still_a_billing_dispute():
    _, (answer,) = talk("online", "can you refund my session? I was overcharged", who="guest")
    assert "› Refund…" not in answer.reply and "set by the charger's site host" not in answer.reply
    assert answer.topic == "billing_dispute"


def test_the_maintenance_window_follow_up_names_where_it_is_set():
    _, (_first, window) = talk(
        "online", "how do I update the firmware?", "and where do I set the maintenance window?"
    )
    assert "Fleet › Maintenance windows, /fleet/windows/" in window.reply


@pytest.mark.parametrize(
    "follow_up",
    ["still empty after I reload, what now?", "its still blank", "the rows are still missing"],
)
def test_a_page_still_empty_after_the_answer_is_handed_to_a_person(follow_up):
    """ "Still empty" says the answer did not help, as "still not working" does: a person takes
    it over (it was read as a new question and got the offline steps again)."""
    _, (first, second) = talk(
        "online", "the logs filter shows nothing when I pick From charger, why?", follow_up
    )
    assert first.ticket is None
    assert second.ticket is not None and second.topic == first.topic
    assert "breaker" not in text(second)
