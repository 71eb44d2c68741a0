"""The assistant's one write: answer a message, keep the conversation, hand over to a ticket.

Flow: extract details → classify (a follow-up that names no topic keeps the conversation's) →
diagnose from live data → reply with the section's steps the findings do not rule out → ask for
what is still missing → create a Ticket with a diagnostic bundle when the person says it did not
help or the section needs a person (refund, deletion, email change).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backoffice.models import Property

from ..models import AssistantConversation, Ticket
from ..services import ticket_confirm_email
from .bundle import bundle_build
from .classifier import Model, classify
from .diagnosis import Diagnosis, Viewer, diagnose
from .extract import extract, last4_answer, not_helped, tried_steps
from .intents import TASKS, Intent, intents, only_asks_where, section_for
from .topics import (
    DETAIL_LABELS,
    SECTIONS,
    Finding,
    Topic,
    missing_details,
    reply_steps,
    required_missing,
)

# Requests the assistant answers with a portal path or passes on, whatever the conversation was.
REQUESTS = frozenset(
    {Intent.REMOVE_CARD, Intent.EXPORT_CSV, Intent.PMS_CONNECT, Intent.PMS_DISCONNECT, *TASKS}
)
MODEL_PATH = Path(__file__).parent / "data" / "model.json"
MAX_MESSAGE = 2000

# API topics -> the Ticket model's topic values (the same ten sections).
TICKET_TOPIC = {
    Topic.CHARGER_OFFLINE: Ticket.Topic.OFFLINE,
    Topic.NOT_CHARGING: Ticket.Topic.NOT_CHARGING,
    Topic.NO_PERMISSION: Ticket.Topic.NOT_ALLOWED,
    Topic.BILLING_DISPUTE: Ticket.Topic.BILLING,
    Topic.COST_BREAKDOWN: Ticket.Topic.COST,
    Topic.ACCOUNT_CANCEL: Ticket.Topic.ACCOUNT,
    Topic.ACCOUNT_EMAIL: Ticket.Topic.EMAIL_CHANGE,
    Topic.CHARGER_SETUP: Ticket.Topic.ASSIGNMENT,
    Topic.GUEST_START_ERROR: Ticket.Topic.GUEST_START,
    Topic.PAYOUTS_REPORTING: Ticket.Topic.PAYOUTS,
    # Not one of seed 003's ten and not a ticket topic of its own: the ticket's details and
    # bundle name the clock.
    Topic.CHARGER_CLOCK: Ticket.Topic.OTHER,
    Topic.OTHER: Ticket.Topic.OTHER,
}


@functools.cache
def model() -> Model:
    """Return the classifier weights shipped in the repository (loaded once per process)."""
    return Model.from_json(MODEL_PATH.read_text(encoding="utf-8"))


@dataclass
class Answer:
    conversation: str
    topic: str
    reply: str
    facts: list[str] = field(default_factory=list)
    asks_for: list[str] = field(default_factory=list)
    ticket: int | None = None
    ticket_reference: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversation": self.conversation,
            "topic": self.topic,
            "reply": self.reply,
            "facts": self.facts,
            "asks_for": self.asks_for,
            "ticket": self.ticket,
            "ticket_reference": self.ticket_reference,
        }


def _conversation(key: str | None, user: Any) -> AssistantConversation | None:
    """Return the conversation with this key if it is the caller's (a host's own, or anonymous)."""
    if not key:
        return None
    conversation = AssistantConversation.objects.select_for_update().filter(key=key).first()
    if conversation is None:
        return None
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    if conversation.user_id != user_id:
        return None  # someone else's: start afresh rather than reveal or continue it
    return conversation


def _intro(
    topic: Topic,
    diagnosis: Diagnosis,
    follow_up: bool = False,
    wanted: frozenset[Intent] = frozenset(),
    given: frozenset[str] = frozenset(),
) -> str:
    findings = diagnosis.findings
    title = SECTIONS[topic].title
    if topic == Topic.OTHER:
        return "I can help with chargers that are offline or not charging, access errors, charges and refunds, accounts and payouts."
    # A host's own fix (a refused card) is not the guest's section: no "This sounds like".
    own_fix = diagnosis.steps and topic != Topic.CHARGER_CLOCK
    lines = [] if follow_up or own_fix else [f"This sounds like: {title}."]
    lines += diagnosis.answers
    if Finding.SELF_SERVICE in findings:
        return " ".join(lines)
    picked = Finding.FLEET_PICK in findings and diagnosis.charger is not None
    if picked and diagnosis.charger is not None:
        lines.append(
            f"You didn't name a charger; from your chargers' live state, "
            f"{diagnosis.charger.station_id} is the one that fits (details below)."
        )
    if Finding.UNKNOWN_STATION in findings:
        lines.append(
            "I couldn't find that charger, so please check its Station ID (printed under the QR code)."
        )
    if topic in (Topic.CHARGER_OFFLINE, Topic.GUEST_START_ERROR, Topic.NOT_CHARGING) and (
        diagnosis.charger is not None
    ):
        if Finding.OFFLINE in findings and not picked:
            lines.append(
                "The charger is offline right now, which explains it: it cannot start or report a session until it is back."
            )
        elif Finding.ONLINE in findings and topic == Topic.CHARGER_OFFLINE:
            lines.append(
                "The charger is online and talking to us right now, so power and internet are fine: you can skip the breaker and Wi-Fi checks."
            )
    if Finding.FAULTED in findings:
        lines.append(
            "A connector reports a fault (details below); try another port if there is one, and a person can reset it remotely."
        )
    if topic == Topic.CHARGER_CLOCK and Finding.CLOCK_WRONG in findings and not follow_up:
        lines.append(
            "The charger sent times it cannot have meant (details below); its sessions are "
            "still timed and billed right."
        )
    if Finding.LICENSE_INACTIVE in findings:
        lines.append(
            "The charger's license is not active, so no session can start until the site host renews it."
        )
    if Finding.CARD_REFUSED in findings and not diagnosis.steps:
        lines.append("I can see the refusal and its reason below.")
    if topic in (Topic.COST_BREAKDOWN, Topic.BILLING_DISPUTE):
        lines.append(_payment_line(findings, wanted, given))
    if topic == Topic.PAYOUTS_REPORTING and Finding.PAYOUT_FAILED in findings:
        lines.append(
            "A payout failed; the reason is below and the amount is carried into the next payout once the bank account is fixed."
        )
    return " ".join(lines)


def _payment_line(findings: set[Finding], wanted: frozenset[Intent], given: frozenset[str]) -> str:
    """What a billing answer says about the payment: the hold, the lines, or how to find it."""
    if Finding.CARD_HOLD in findings:
        return (
            "The card was held at the start and charged less at the end: one payment, "
            "not two (below)."
        )
    elif Finding.SESSION_PRICED in findings:
        return "Here is how the session was priced, line by line."
    elif Intent.CHARGED_TWICE in wanted:
        return (
            "A payment that shows twice is usually the card hold: when a session starts the "
            "card is held for an amount (a pre-authorization, not a charge); when it ends only "
            "the session's cost is captured and the rest of the hold is released, which the "
            "bank can show as pending for a few days. Tell me the amount and the last 4 digits "
            "of the card and I'll check which it was."
        )
    elif given & {"amount", "card_last4", "email"}:
        return (
            "I haven't found a payment with that yet; the charger, or the amount and the last "
            "4 digits together, will find it."
        )
    else:
        return (
            "Tell me the amount or the last 4 digits of the card (or the email it was paid "
            "with), and the charger if you are not on its page, and I'll show its lines."
        )


def _reply(
    topic: Topic,
    diagnosis: Diagnosis,
    asks_for: list[str],
    ticket: Ticket | None,
    handed_over_now: bool,
    steps: list[str],
    suggested_before: bool,
    wanted: frozenset[Intent] = frozenset(),
    given: frozenset[str] = frozenset(),
) -> str:
    parts = [
        _intro(
            topic, diagnosis, follow_up=suggested_before or not steps, wanted=wanted, given=given
        )
    ]
    if steps and ticket is None:
        parts.append("What to do: " + " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1)))
    elif suggested_before and ticket is None:
        parts.append("You have tried what I suggested.")
    if ticket is not None:
        hours = settings.SUPPORT_REPLY_HOURS
        if handed_over_now:
            parts.append(
                f"I've passed this to a person with the details and everything I found: ticket "
                f"#{ticket.reference}. They will answer by email within {hours} hours."
            )
        else:
            parts.append(
                f"Your ticket #{ticket.reference} has this too; a person will answer by email "
                f"within {hours} hours."
            )
    if asks_for:
        missing = ", ".join(DETAIL_LABELS.get(name, name) for name in asks_for)
        if ticket is not None:
            parts.append(f"Please send {missing}.")
        elif SECTIONS[topic].needs_human:
            parts.append(f"So a person can do this, tell me {missing}.")
        else:
            parts.append(f"If this doesn't solve it, tell me {missing}.")
    return " ".join(parts)


def _suggested(conversation: AssistantConversation, topic: Topic) -> set[str]:
    """The steps the assistant already gave in this conversation for this section."""
    return {
        step
        for m in conversation.messages
        if m.get("role") == "assistant" and m.get("topic") == topic.value
        for step in m.get("steps", [])
    }


def _property_named(message: str, viewer: Viewer) -> str:
    """Return the name of a property the message names (a host: only their own)."""
    lowered = " ".join(message.lower().split())
    properties = Property.objects.all()
    if viewer.is_host and viewer.organization_ids is not None:
        properties = properties.filter(organization_id__in=viewer.organization_ids)
    for name in properties.order_by("-name").values_list("name", flat=True)[:2000]:
        if len(name) >= 4 and " ".join(name.lower().split()) in lowered:
            return name
    return ""


def _last_asked(conversation: AssistantConversation) -> list[str]:
    """What the assistant's last reply asked for."""
    for m in reversed(conversation.messages):
        if m.get("role") == "assistant":
            return list(m.get("asks_for", []))
    return []


def _transcript(conversation: AssistantConversation) -> str:
    return "\n".join(f"{m['role']}: {m['text']}" for m in conversation.messages)


def _collect(
    conversation: AssistantConversation, message: str, viewer: Viewer, user: Any
) -> tuple[dict[str, str], dict[str, str]]:
    """Return (what this message says, all details so far) in asks_for names."""
    found = extract(message)
    asked = _last_asked(conversation)
    if "card_last4" in asked and "card_last4" not in found and (digits := last4_answer(message)):
        found["card_last4"] = digits  # "4242" right after being asked for the last 4 digits
    wanted = intents(message)
    if Intent.REMOVE_CARD in wanted:
        found.setdefault("cancel_or_delete", "remove the saved card")
    details = dict(conversation.details)
    if (
        "account_email" in found
        and "new_email" not in found
        and details.get("account_email")
        and found["account_email"].lower() != details["account_email"].lower()
        and conversation.topic == Topic.ACCOUNT_EMAIL.value
    ):
        # The current address is known: a second one is the address to move to.
        found = {k: v for k, v in found.items() if k not in ("account_email", "email")}
        found["new_email"] = extract(message)["account_email"]
    host_email = str(getattr(user, "email", "") or "") if viewer.is_host else ""
    if host_email:
        details.setdefault("account_email", host_email)
    if "property" not in found and (named := _property_named(message, viewer)):
        found["property"] = named
    details.update({k: v for k, v in found.items() if v})
    return found, details


def _choose_topic(
    conversation: AssistantConversation, message: str, found: dict[str, str], helped_not: bool
) -> Topic:
    prediction = classify(model(), message)
    previous = (
        Topic(conversation.topic)
        if conversation.pk and conversation.topic in Topic._value2member_map_
        else Topic.OTHER
    )
    wanted = intents(message)
    topic = Topic(section_for(wanted, prediction.topic))
    if topic != Topic(prediction.topic) and wanted & REQUESTS:
        return topic  # a request (remove a card, a CSV, a PMS) is what it says, even mid-way
    if only_asks_where(wanted) and previous != Topic.OTHER:
        return previous  # "and where are its logs?" is answered on the way, moving nothing
    if topic == Topic.CHARGER_CLOCK:
        return topic  # the classifier knows no clock section: its words place it, mid-way too
    if previous != Topic.OTHER and (
        helped_not or topic == Topic.OTHER or found or prediction.confidence < 0.8
    ):
        return previous  # a follow-up ("didn't help", "it's DEMO-002, 9:05") stays on its section
    return topic


def _hand_over_now(
    conversation: AssistantConversation,
    topic: Topic,
    details: dict[str, str],
    found: dict[str, str],
    helped_not: bool,
    diagnosis: Diagnosis,
    wanted: set[Intent],
) -> bool:
    """Hand over when the person says it did not help or asks for a person, or asks for what only
    support does; never when they say the answer solved it. Otherwise once the details are in: at
    once for what only a person can do (refund, deletion, email change), unless the answer already
    explains it (a card hold) or the portal does it; for the others on a follow-up that gives the
    details asked for (the ones still missing are asked for on the ticket)."""
    if Intent.RESOLVED in wanted and not helped_not:
        return False
    if helped_not or Intent.PERSON in wanted:
        return True
    answered_before = any(
        m.get("role") == "assistant" and m.get("topic") == topic.value
        for m in conversation.messages[:-1]
    )
    explained = {Finding.CARD_HOLD, Finding.SELF_SERVICE} & diagnosis.findings
    if not required_missing(topic, details) and SECTIONS[topic].needs_human and not explained:
        return True
    if answered_before and _steps_done_still_broken(conversation, topic, diagnosis):
        return True
    if not answered_before or Finding.SELF_SERVICE in diagnosis.findings:
        return False
    section_details = set(SECTIONS[topic].details) | {"card_last4", "amount", "email"}
    gave = {name for name, value in found.items() if value} & section_details
    # Naming the charger alone (answering "which one is it?") first gets that charger's answer.
    return bool(gave - {"station_id"}) or (bool(gave) and not required_missing(topic, details))


# What the live data shows while a section's problem lasts (seed 003 §1: "If the charger is
# still offline ... after these steps, contact support").
STILL_BROKEN: dict[Topic, Finding] = {Topic.CHARGER_OFFLINE: Finding.OFFLINE}


def _steps_done_still_broken(
    conversation: AssistantConversation, topic: Topic, diagnosis: Diagnosis
) -> bool:
    """Every step was suggested, the person says they did them (not only that they will) and
    the live data still shows the problem: a person takes it over."""
    symptom = STILL_BROKEN.get(topic)
    if symptom is None or symptom not in diagnosis.findings:
        return False
    if not tried_steps(conversation.messages[-1].get("text", "")):
        return False
    before = _suggested(conversation, topic)
    return bool(before) and not [
        s for s in reply_steps(topic, diagnosis.findings) if s not in before
    ]


@transaction.atomic
def assistant_answer(
    *,
    message: str,
    conversation_key: str | None = None,
    station_id: str = "",
    session_id: int | None = None,
    email: str = "",
    user: Any = None,
    client_ip: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """Answer one message: classify, diagnose, reply, and hand over to a ticket when needed."""
    now = now or timezone.now()
    message = message.strip()[:MAX_MESSAGE]
    viewer = Viewer.for_user(user)
    conversation = _conversation(conversation_key, user)
    if conversation is None:
        signed_in = user is not None and getattr(user, "is_authenticated", False)
        conversation = AssistantConversation(
            user=user if signed_in else None, client_ip=client_ip or None
        )
    helped_not = not_helped(message)
    wanted = intents(message)
    topic = _choose_topic(conversation, message, extract(message), helped_not)
    conversation.topic = topic.value
    found, details = _collect(conversation, message, viewer, user)
    # A charger this message names wins over the page's (a host on DEMO-004's page asking
    # about DEMO-001 means DEMO-001); then the page's, then the conversation's.
    station_id = (
        found.get("station_id", "")
        or (station_id or "").strip()[:60]
        or details.get("station_id", "")
        or conversation.station_id
    )
    email = (
        (email or "").strip()
        or details.get("email", "")
        or conversation.email
        or viewer.driver_email
    )
    if email:
        details.setdefault("account_email", email)
        details["email"] = email
    session_id = (
        session_id
        if session_id is not None
        else (conversation.session_id if conversation.session_id else None)
    )
    diagnosis = diagnose(
        topic,
        viewer=viewer,
        station_id=station_id,
        session_id=session_id,
        email=email,
        details=details,
        now=now,
        wanted=frozenset(wanted),
    )
    _merge_live(details, diagnosis)

    conversation.station_id = station_id
    conversation.charger = diagnosis.charger
    conversation.session = diagnosis.session
    conversation.email = email
    conversation.details = details
    conversation.messages = [
        *conversation.messages,
        {"role": "user", "text": message, "at": now.isoformat()},
    ]

    ticket = conversation.ticket
    handed_over_now = False
    if ticket is None and _hand_over_now(
        conversation, topic, details, found, helped_not, diagnosis, wanted
    ):
        ticket = _handover(conversation, topic, diagnosis, viewer, user, client_ip)
        handed_over_now = True
    asks_for = missing_details(topic, details)
    if ticket is not None and not email and not viewer.is_host:
        asks_for = ["email", *[a for a in asks_for if a not in ("account_email", "email")]]
    before = _suggested(conversation, topic)
    # "What do I do about it?" asks for the steps again, even those given before.
    again = Intent.WHAT_TO_DO in wanted
    steps = [
        s
        for s in (diagnosis.steps or reply_steps(topic, diagnosis.findings))
        if again or s not in before
    ]
    if ticket is None and only_asks_where(wanted) and diagnosis.answers:
        # "Where do I see its logs?": the path is the whole answer, mid-conversation or not.
        steps, asks_for = [], []
        reply = " ".join(diagnosis.answers)
    else:
        reply = _reply(
            topic,
            diagnosis,
            asks_for,
            ticket,
            handed_over_now,
            steps,
            bool(before),
            wanted=frozenset(wanted),
            given=frozenset(k for k, v in details.items() if v),
        )
    conversation.messages = [
        *conversation.messages,
        {
            "role": "assistant",
            "text": reply,
            "at": now.isoformat(),
            "topic": topic.value,
            "steps": steps if ticket is None else [],
            "asks_for": asks_for,
        },
    ]
    conversation.ticket = ticket
    conversation.save()
    if ticket is not None and not handed_over_now:
        _ticket_follow_up(ticket, conversation, email)
    return Answer(
        conversation.key,
        topic.value,
        reply,
        diagnosis.facts,
        asks_for,
        ticket.pk if ticket else None,
        ticket.reference if ticket else "",
    )


def _merge_live(details: dict[str, str], diagnosis: Diagnosis) -> None:
    """Add what the live data answers: the charger, its property, the session's time, PMS, payout."""
    for name, value in diagnosis.details.items():
        details.setdefault(name, value)
    if diagnosis.charger is not None:
        details["station_id"] = diagnosis.charger.station_id
    if details.get("station_id"):
        details.setdefault("serial_or_station_id", details["station_id"])
    if diagnosis.property_name:
        details.setdefault("property", diagnosis.property_name)
    session = diagnosis.session
    if session is not None:
        details.setdefault("occurred_at", session.started_at.isoformat())
        charge = getattr(session, "charge", None)
        if charge is not None:
            details.setdefault("amount", f"{charge.total} {charge.currency}")
    # What was found, for the ticket; identity facts go to the agent only (never into a reply).
    details["diagnosis"] = " ".join(
        [*diagnosis.facts, *diagnosis.ticket_facts, *diagnosis.agent_facts]
    )[:2000]


def _handover(
    conversation: AssistantConversation,
    topic: Topic,
    diagnosis: Diagnosis,
    viewer: Viewer,
    user: Any,
    client_ip: str | None,
) -> Ticket:
    charger = diagnosis.charger
    organization_id = charger.organization_id if charger is not None else None
    if organization_id is None and viewer.is_host and viewer.organization_ids:
        organization_id = viewer.organization_ids[0]
    email = conversation.email or (getattr(user, "email", "") if viewer.is_host else "")
    details = conversation.details
    ticket = Ticket.objects.create(
        topic=TICKET_TOPIC[topic],
        source=Ticket.Source.ASSISTANT,
        email=email,
        station_id=conversation.station_id[:60],
        charger=charger,
        property=charger.property if charger is not None and charger.property_id else None,
        property_name=details.get("property", ""),
        organization_id=organization_id,
        session=diagnosis.session,
        requested_by=user if viewer.is_host else None,
        message=_transcript(conversation),
        details=details,
        client_ip=client_ip or None,
        bundle=bundle_build(
            charger=charger,
            session=diagnosis.session,
            organization_id=organization_id,
            facts=[*diagnosis.facts, *diagnosis.ticket_facts],
        ),
    )
    if email:
        transaction.on_commit(lambda: ticket_confirm_email(ticket_id=ticket.pk))
    return ticket


def _ticket_follow_up(ticket: Ticket, conversation: AssistantConversation, email: str) -> None:
    """Keep a handed-over ticket up to date with what the customer adds in the chat."""
    first_email = not ticket.email and email
    ticket.message = _transcript(conversation)
    ticket.details = conversation.details
    if first_email:
        ticket.email = email
    ticket.save(update_fields=["message", "details", "email", "updated_at"])
    if first_email:
        transaction.on_commit(lambda: ticket_confirm_email(ticket_id=ticket.pk))
