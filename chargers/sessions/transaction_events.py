"""The one way a 2.0.1 TransactionEvent reaches its write (`TransactionEvents.record`).

A connection holds one `TransactionEvents`: what sessions knows of the transactions of the
charger on that socket. A transaction whose last event changed nothing but its readings is
steady (`rules.SteadyFacts`): its next in-order Updated events can only add readings, so they
are appended in batches with other chargers' (`_appends`) instead of one database transaction,
session lock and check each; its Ended, when it carries what the fold would read, closes it the
same way. Only this socket sends this charger's events, so what it saw stays true; a session
closed by something else is caught when appending. Every other event takes the full path
(`transactions.transaction_event_record`, or the batched Started), which may change any
transaction of the charger: what the socket knew is then learned again from its outcome.

The handler decides the event's card (authorization) and shapes the answer; the write and
what it needs to know are here.

This module is also the only door of sessions/ that the 2.0.1 handler
(chargers.handlers.v201) goes through: the reading of an event and of its meter values, the
other messages that land in sessions (MeterValues' signed samples, the phases used, a card's
status at a stop, ReservationStatusUpdate) and the types of an answer are named here, once
(`__all__`, below), so a change to sessions' inside shows here what the handler relies on
(tests/test_architecture.py keeps the handler to this one module).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from authorization.services import decision_record
from backoffice import db
from chargers.ocpp import quirks as q
from chargers.ocpp.storable import clean_value
from chargers.plumbing.batching import Coalescer
from chargers.plumbing.journal import is_outage
from chargers.sessions import closing, reservations, rules, services
from chargers.sessions import transactions as services_v201
from chargers.sessions import v201_transactions as tx
from chargers.sessions.signed import SIGNED_201, signed_values
from chargers.sessions.transactions import TransactionEventOutcome
from chargers.sessions.v201_transactions import TxEvent, read_meter_values

# What the 2.0.1 handler may use of sessions/: this module's own entry (TransactionEvents and
# what it takes and gives) and the other services of sessions that 2.0.1 messages reach.
__all__ = [
    "SIGNED_201",
    "CardFacts",
    "EventWrite",
    "Recorded",
    "TransactionEventOutcome",
    "TransactionEvents",
    "TxEvent",
    "read_event",
    "read_meter_values",
    "reservation_status_update",
    "session_phases_record",
    "signed_samples_store",
    "signed_values",
    "token_group",
    "token_status_for_stop",
    "trigger_accepted_recently",
]

read_event = services_v201.read_transaction_event
token_group = services_v201.token_group
session_phases_record = services_v201.session_phases_record
trigger_accepted_recently = services_v201.trigger_accepted_recently
token_status_for_stop = services.token_status_for_stop
signed_samples_store = services.signed_samples_store
reservation_status_update = reservations.reservation_status_update

logger = logging.getLogger(__name__)

ASKED_MAX = 1_000  # transactions per socket: a charger inventing ids must not grow it forever

# Transactions answered from the journal keep the integer id we drew for them.
_journaled_transactions: OrderedDict[tuple[int, str], int] = OrderedDict()
JOURNALED_TRANSACTIONS_MAX = 10_000

_appends: Coalescer[services_v201.TxAppend, bool] = Coalescer(
    "tx-event-append", apply_async=services_v201.transaction_events_append_batch
)
_steady_reads: Coalescer[tuple[int, str], rules.SteadyFacts | None] = Coalescer(
    "tx-steady", apply_async=services_v201.transactions_steady_batch
)


@dataclass
class Steady:
    """A steady transaction of this socket (`rules.SteadyFacts`), with the outcome an appended
    event gives the handler."""

    facts: rules.SteadyFacts
    outcome: TransactionEventOutcome


@dataclass
class CardFacts:
    """What the event's card decided, stored with what the event writes (the full path)."""

    session_status: str | None = None  # the decision's status, kept on a session it opens
    token_id: int | None = None
    token_known: bool = False  # the card was looked up (token_id None: no card matched)
    record: dict | None = None  # a decision to store with what this event opens


@dataclass(frozen=True)
class EventWrite:
    """One TransactionEvent to write, as the handler read it."""

    charger_id: int
    event: tx.TxEvent
    payload: dict
    received_at: datetime
    clean: bool  # the frame needed no cleaning (storable.clean_value) to be stored
    quirks: q.Quirks


@dataclass(frozen=True)
class Recorded:
    outcome: TransactionEventOutcome
    appended: bool  # written by the steady path: no card was decided for it
    payload_json: str | None = None  # the payload as stored, compact (the log row's too)


def _energy_at(event: tx.TxEvent, since: datetime) -> datetime:
    """The last energy register reading once `event`'s readings are stored."""
    latest = tx.last_energy_reading_at(event)
    return max(since, latest) if latest else since


def _steady(facts: rules.SteadyFacts, charger_id: int) -> Steady:
    return Steady(
        facts,
        services_v201.appended_outcome(
            session_id=facts.session_id,
            charger_id=charger_id,
            connector_id=facts.connector_id,
            transaction_id=facts.transaction_id,
        ),
    )


@dataclass
class TransactionEvents:
    """The 2.0.1 transactions of one socket's charger, and the entry their events take."""

    steady: dict[str, Steady] = field(default_factory=dict)  # by the charger's transactionId
    # Transactions whose steadiness was read (`_learn`) or that a full path taught.
    asked: set[str] = field(default_factory=set)

    def _steady_for(self, event: tx.TxEvent) -> Steady | None:
        steady = self.steady.get(event.transaction_id)
        facts = steady.facts if steady is not None else None
        if rules.appendable(facts, event, tx.end_register_wh):
            return steady
        return None

    def our_id(self, charger_id: int, event: tx.TxEvent) -> int | None:
        """Our integer id for a session this event may open (the one drawn when it was
        journaled, if it was); None for an event that appends to a session that exists."""
        journaled = _journaled_transactions.get((charger_id, event.transaction_id))
        if journaled:
            return journaled
        return None if self._steady_for(event) else services.new_transaction_id()

    def journaled(self, charger_id: int, event: tx.TxEvent, our_id: int | None) -> None:
        """The event was journaled (a database outage): its replay takes the full path, and a
        resend keeps `our_id`."""
        self.steady.clear()
        if our_id is not None:
            _journaled_transactions[(charger_id, event.transaction_id)] = our_id
        while len(_journaled_transactions) > JOURNALED_TRANSACTIONS_MAX:
            _journaled_transactions.popitem(last=False)

    async def record(
        self,
        write: EventWrite,
        our_id: int | None,
        card: Callable[[], Awaitable[CardFacts]],
    ) -> Recorded:
        """Write the event: appended when its transaction is steady, else through the full path
        with the facts of its card (`card`, asked only then). An outage is raised for the
        caller to journal."""
        steady = self._steady_for(write.event) or await self._learn(write)
        payload_json = None
        if steady is not None:
            payload_json, appended = await self._append(steady, write)
            if appended is not None:
                return Recorded(appended, appended=True, payload_json=payload_json)
        # The full path may change any transaction of this charger (a Started closes the one it
        # supersedes): what this socket knew is learned again from its outcomes.
        self.steady.clear()
        self.asked.add(write.event.transaction_id)
        outcome = await _full_path(write, our_id, await card())
        self._remember(write, outcome)
        return Recorded(outcome, appended=False, payload_json=payload_json)

    async def _learn(self, write: EventWrite) -> Steady | None:
        """An Updated or Ended of a transaction this socket has not seen (the charger reconnected
        in the middle of it, e.g. after a deploy): whether it may be appended, from one read
        instead of a locked transaction of its own. Asked once per transaction and socket; the
        full path teaches the rest."""
        event = write.event
        if (
            event.event_type not in ("Updated", "Ended")
            or event.seq_no is None
            or (event.id_token and event.event_type != "Ended")
            or event.transaction_id in self.steady
            or event.transaction_id in self.asked
        ):
            return None
        if len(self.asked) >= ASKED_MAX:
            self.asked.clear()
        self.asked.add(event.transaction_id)
        facts = await _steady_reads.submit((write.charger_id, event.transaction_id))
        if facts is None:
            return None
        self.steady[event.transaction_id] = _steady(facts, write.charger_id)
        return self._steady_for(event)

    async def _append(
        self, steady: Steady, write: EventWrite
    ) -> tuple[str | None, TransactionEventOutcome | None]:
        """Append a steady transaction's in-order Updated or its Ended: the payload's JSON if it
        was written out, and the outcome (None: take the full path)."""
        event, facts = write.event, steady.facts
        assert event.seq_no is not None
        facts.seq_no = event.seq_no  # a resend of this seqNo while it is written: full path
        end = None
        if event.event_type == "Ended":
            end = closing.tx_end_of(event)
        # Written once: the event row's JSON is also the log row's.
        payload_json = json.dumps(write.payload, separators=(",", ":")) if write.clean else None
        try:
            written = await _appends.submit(
                services_v201.TxAppend(
                    charger_id=write.charger_id,
                    session_id=facts.session_id,
                    connector_id=facts.connector_id,
                    event=event,
                    payload=write.payload if write.clean else clean_value(write.payload)[0],
                    received_at=write.received_at,
                    end=end,
                    payload_json=payload_json,
                )
            )
        except Exception as exc:
            if is_outage(exc):
                raise  # journaled by the caller, like the full path
            logger.warning(
                "Appending TransactionEvent %s/%s failed (%s); full path",
                event.transaction_id,
                event.seq_no,
                exc,
            )
            written = False
        if not written:
            return payload_json, None
        if end is not None:  # the transaction is over: a late event of it takes the full path
            self.steady.pop(event.transaction_id, None)
            self.asked.add(event.transaction_id)
            return payload_json, services_v201.appended_outcome(
                session_id=facts.session_id,
                charger_id=write.charger_id,
                connector_id=facts.connector_id,
                transaction_id=facts.transaction_id,
                ended=True,
            )
        facts.energy_at = _energy_at(event, facts.energy_at)
        facts.reason_before = facts.reason_before or bool(event.stopped_reason)
        return payload_json, steady.outcome

    def _remember(self, write: EventWrite, outcome: TransactionEventOutcome) -> None:
        """Keep what the next Updated events of this transaction may be appended with."""
        event = write.event
        if outcome.steady_since is None or event.seq_no is None:
            return
        session = outcome.session
        self.steady[event.transaction_id] = _steady(
            rules.SteadyFacts(
                session.pk,
                session.connector_id,
                session.transaction_id,
                session.started_at,
                session.remote_start_id,
                event.seq_no,
                _energy_at(event, outcome.steady_since),
                # A session this event opened has no other event; otherwise not known here.
                reason_before=bool(event.stopped_reason) if outcome.started else True,
                driver=session.id_tag,
            ),
            write.charger_id,
        )


async def _full_path(
    write: EventWrite, our_id: int | None, card: CardFacts
) -> TransactionEventOutcome:
    # Never refused (E: a CALLERROR loses billing data): stored whatever the decision; a
    # charger stops a transaction whose idTokenInfo is not Accepted (E05).
    event = write.event
    if event.event_type == "Started" and our_id is not None:
        # Opened in a batch with other chargers' (services_v201.started_batched), with its decision.
        return await services_v201.started(
            services_v201.StartedRequest(
                charger_id=write.charger_id,
                event=event,
                payload=write.payload,
                storable=write.payload if write.clean else clean_value(write.payload)[0],
                received_at=write.received_at,
                transaction_id=our_id,
                id_tag_status=card.session_status,
                token_id=card.token_id,
                decision_record=card.record,
                quirks=write.quirks,
            )
        )
    if card.record is not None:
        await db.run(decision_record, **card.record)
    return await db.run(
        services_v201.transaction_event_record,
        charger_id=write.charger_id,
        payload=write.payload,
        received_at=write.received_at,
        id_tag_status=card.session_status,
        transaction_id=our_id,
        token_id=card.token_id,
        token_known=card.token_known,
        event=event,
        quirks=write.quirks,
    )
