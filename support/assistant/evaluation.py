"""Run the conversation test set (data/conversations.toml) and score it.

Three figures (issue 34 item 5): first-answer accuracy (the first reply is on the right section,
shows the expected diagnosis and nothing it must hide), follow-up accuracy (each later reply keeps
the section, does not ask again for what it already has, shows and hides what it should, and opens
a ticket exactly when expected) and hand-off completeness (each ticket the set expects holds the
topic, the listed details and the diagnosis, and the reply names its reference and when to expect
an answer). Every conversation runs in a transaction that is rolled back.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from ..models import Ticket
from . import situations
from .service import TICKET_TOPIC, Answer, assistant_answer
from .topics import Topic

CONVERSATIONS = Path(__file__).parent / "data" / "conversations.toml"


@dataclass
class Result:
    conversation: str
    first_ok: bool = False
    followups: int = 0
    followups_ok: int = 0
    handoff_expected: bool = False
    handoff_ok: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    results: list[Result]

    @property
    def first(self) -> tuple[int, int]:
        return sum(r.first_ok for r in self.results), len(self.results)

    @property
    def followup(self) -> tuple[int, int]:
        return sum(r.followups_ok for r in self.results), sum(r.followups for r in self.results)

    @property
    def handoff(self) -> tuple[int, int]:
        expected = [r for r in self.results if r.handoff_expected]
        return sum(r.handoff_ok for r in expected), len(expected)


class _Rollback(Exception):
    pass


def load(path: Path = CONVERSATIONS) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return list(tomllib.load(handle)["conversation"])


def _text(answer: Answer) -> str:
    return (answer.reply + "\n" + "\n".join(answer.facts)).lower()


def _check_turn(
    turn: dict[str, Any], answer: Answer, topic: str, had: set[str], label: str
) -> list[str]:
    problems = []
    if answer.topic != turn.get("topic", topic):
        problems.append(f"{label}: topic {answer.topic}, expected {turn.get('topic', topic)}")
    text = _text(answer)
    problems += [f"{label}: missing {s!r}" for s in turn.get("shows", []) if s.lower() not in text]
    problems += [f"{label}: shows {s!r}" for s in turn.get("hides", []) if s.lower() in text]
    if "ticket" in turn and bool(answer.ticket) != turn["ticket"]:
        problems.append(f"{label}: ticket {answer.ticket}, expected {turn['ticket']}")
    asked_again = sorted(had & set(answer.asks_for))
    if asked_again:
        problems.append(f"{label}: asks again for {', '.join(asked_again)}")
    return problems


def _check_handoff(conversation: dict[str, Any], ticket_id: int | None, reply: str) -> list[str]:
    ticket = Ticket.objects.filter(pk=ticket_id).first() if ticket_id else None
    if ticket is None:
        return ["hand-off: no ticket"]
    problems = []
    topic = Topic(conversation["turn"][0]["topic"])
    if ticket.topic != TICKET_TOPIC[topic]:
        problems.append(f"hand-off: ticket topic {ticket.topic}")
    details = ticket.details or {}
    missing = [name for name in conversation.get("handoff", []) if not details.get(name)]
    if missing:
        problems.append(f"hand-off: ticket lacks {', '.join(missing)}")
    if not (ticket.bundle or {}).get("facts") and not details.get("diagnosis"):
        problems.append("hand-off: ticket holds no diagnosis")
    if ticket.reference not in reply or "answer" not in reply.lower():
        problems.append("hand-off: reply does not name the reference and when to expect an answer")
    return problems


def _run(conversation: dict[str, Any]) -> Result:
    result = Result(conversation["id"])
    stage = situations.build(conversation["situation"])
    user = stage.host if conversation.get("as") == "host" else None
    key = None
    topic = conversation["turn"][0]["topic"]
    expects_ticket = any(turn.get("ticket") for turn in conversation["turn"])
    last_reply, ticket_id = "", None
    for index, turn in enumerate(conversation["turn"]):
        had = {k for k, v in _held(key).items() if v}
        answer = assistant_answer(
            message=turn["say"],
            conversation_key=key,
            station_id=conversation.get("page", ""),
            email=conversation.get("email", ""),
            user=user,
        )
        key = answer.conversation
        if answer.ticket and ticket_id is None:
            last_reply = answer.reply  # the reply that opened the ticket names it
        ticket_id = answer.ticket or ticket_id
        problems = _check_turn(turn, answer, topic, had if index else set(), f"turn {index + 1}")
        result.problems += problems
        if index == 0:
            result.first_ok = not problems
        else:
            result.followups += 1
            result.followups_ok += not problems
    if expects_ticket:
        result.handoff_expected = True
        handoff = _check_handoff(conversation, ticket_id, last_reply)
        result.problems += handoff
        result.handoff_ok = not handoff
    return result


def _held(key: str | None) -> dict[str, Any]:
    from ..models import AssistantConversation

    if not key:
        return {}
    conversation = AssistantConversation.objects.filter(key=key).first()
    return dict(conversation.details) if conversation else {}


def run_one(conversation: dict[str, Any]) -> Result:
    """Run one conversation against its situation and roll everything back."""
    outcome: list[Result] = []
    try:
        with transaction.atomic():
            outcome.append(_run(conversation))
            raise _Rollback
    except _Rollback:
        pass
    return outcome[0]


def evaluate(conversations: list[dict[str, Any]] | None = None) -> Report:
    return Report([run_one(c) for c in (conversations if conversations is not None else load())])
