"""OCPP 2.0.1 transactions: the TransactionEvent writes, each with its ORM path and its batched
PostgreSQL path side by side (rules: chargers.sessions.rules):

- any event, through the full path: `transaction_event_record` (stored once by (transactionId,
  seqNo), the session refolded from all its events: Started, Updated, Ended, out of order, late
  offline); a Started in batches: `started_batched`, which leaves what it cannot take to it;
- the in-order Updated and Ended of a steady transaction: `transaction_events_append` (ORM) and
  `transaction_events_append_batch` (COPY on PostgreSQL).

The session a transaction's first event opens and the close an Ended makes are written by the
homes of every open and every close, chargers.sessions.opening and chargers.sessions.closing
(issue 50 item 3): these paths call them.

Also the reads the socket needs to know a transaction is steady, and the journal replay.

The same domain as chargers.sessions.services: a 2.0.1 transaction is a ChargingSession (with the
charger's string transaction id in `ocpp_transaction_id` and one of our integer ids in
`transaction_id`, so billing, guest, Logs and the API need not know the protocol).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import connections, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from authorization.services import decision_record, token_find, token_find_presented
from backoffice import async_pg, db
from chargers.messagelog import meter_values
from chargers.models import (
    Charger,
    ChargingSession,
    MeterValue,
    TransactionEvent,
)
from chargers.ocpp import quirks as q
from chargers.ocpp.protocol201 import REQUEST_VALIDATORS
from chargers.ocpp.storable import clean_value
from chargers.plumbing.batching import Coalescer, on_pg_or_pool, the_rest_one_by_one
from chargers.sessions import closing, opening, rules
from chargers.sessions import v201_transactions as tx
from chargers.sessions.rules import SteadyFacts
from chargers.sessions.services import (
    session_announce_on_commit,
    session_flag_no_reading_on_commit,
    sessions_announce,
)
from chargers.state import quirks as quirks_state

logger = logging.getLogger(__name__)


def token_group(*, charger_id: int, id_token: str) -> str:
    """Return the group (groupIdToken, C09) of a card as this charger's organization knows it."""
    organization_id = (
        Charger.objects.filter(pk=charger_id)
        .values_list("property__organization_id", flat=True)
        .first()
    )
    token = token_find(id_token, organization_id)
    return token.parent_id_tag if token is not None else ""


def _steady_since(session: ChargingSession, event: tx.TxEvent) -> datetime | None:
    """Whether `event` is a plain in-order Updated of an active session whose Started and first
    energy reading we have (called before its own readings are stored): its fold would give the
    same session (the end is not known yet; `rules.steady_continues`), so the refold of every
    event is skipped. This is most events of a long session; an Ended always refolds.

    Returns the time of the session's last energy reading when so (the connection keeps it to
    append the next such events in batches, `transaction_events_append`), else None."""

    def continues(energy_at: datetime | None) -> bool:
        return rules.steady_continues(
            event,
            connector_id=session.connector_id,
            remote_start_id=session.remote_start_id,
            started_at=session.started_at,
            energy_at=energy_at,
        )

    if not (
        event.event_type == "Updated"
        and session.status == ChargingSession.Status.ACTIVE
        and not event.id_token
        and continues(None)
    ):
        return None
    # One round trip: a Started is stored, no later seqNo is, and the last energy reading.
    events = TransactionEvent.objects.filter(session=session)
    flags = (
        ChargingSession.objects.filter(pk=session.pk)
        .values_list(
            Exists(events.filter(event_type="Started")),
            Exists(events.filter(seq_no__gt=event.seq_no)),
            Subquery(
                MeterValue.objects.filter(session=session, measurand=tx.ENERGY_REGISTER, phase="")
                .order_by("-timestamp")
                .values("timestamp")[:1]
            ),
        )
        .first()
    )
    if flags is None:
        return None
    started, later, last_reading = flags
    if not started or later or last_reading is None:
        return None
    return last_reading if continues(last_reading) else None


def transaction_steady(*, charger_id: int, transaction_id: str) -> SteadyFacts | None:
    """For a socket that has not seen this transaction (its charger reconnected in the middle of
    it): the facts `_steady_since` checks, from one read without a lock (the append locks the
    session and checks it is still active). None when its next Updated must take the full path:
    no active session, no Started stored or no energy reading yet."""
    events = TransactionEvent.objects.filter(session=OuterRef("pk"))
    row = (
        ChargingSession.objects.filter(
            charger_id=charger_id,
            ocpp_transaction_id=transaction_id,
            status=ChargingSession.Status.ACTIVE,
        )
        .annotate(
            started=Exists(events.filter(event_type="Started")),
            last_seq=Subquery(events.order_by("-seq_no").values("seq_no")[:1]),
            energy_at=Subquery(
                MeterValue.objects.filter(
                    session=OuterRef("pk"), measurand=tx.ENERGY_REGISTER, phase=""
                )
                .order_by("-timestamp")
                .values("timestamp")[:1]
            ),
            reasons=Exists(events.filter(payload__transactionInfo__has_key="stoppedReason")),
        )
        .values_list(
            "pk",
            "connector_id",
            "transaction_id",
            "started_at",
            "remote_start_id",
            "started",
            "last_seq",
            "energy_at",
            "reasons",
            "id_tag",
        )
        .first()
    )
    if row is None:
        return None
    (
        pk,
        connector_id,
        our_id,
        started_at,
        remote_start_id,
        started,
        last_seq,
        energy_at,
        reasons,
        driver,
    ) = row
    if not started or last_seq is None or energy_at is None:
        return None
    return SteadyFacts(
        pk, connector_id, our_id, started_at, remote_start_id, last_seq, energy_at, reasons, driver
    )


def transactions_steady(keys: list[tuple[int, str]]) -> list[SteadyFacts | None]:
    """`transaction_steady` of many (charger, transactionId) pairs (the ORM path of the batch)."""
    return [
        transaction_steady(charger_id=charger_id, transaction_id=tx_id)
        for charger_id, tx_id in keys
    ]


_steady_pg = async_pg.LoopConnection("ocpp-tx-steady")


async def transactions_steady_batch(keys: list[tuple[int, str]]) -> list[SteadyFacts | None]:
    """`transaction_steady` of many chargers' transactions in one statement, from the event loop
    on PostgreSQL (every charger reconnecting after a deploy asks at once); elsewhere the ORM on
    the database pool. The ORM's compiling of this query cost more than the query."""
    if not async_pg.enabled():
        return await db.run(transactions_steady, keys)
    sessions, events, meters = (
        m._meta.db_table for m in (ChargingSession, TransactionEvent, MeterValue)
    )
    async with _steady_pg.use() as conn:
        cursor = await conn.execute(
            f"SELECT k.charger_id, k.tx_id, s.id, s.connector_id, s.transaction_id, s.started_at, s.remote_start_id, "
            "s.id_tag, "
            f"EXISTS (SELECT 1 FROM {events} e WHERE e.session_id = s.id AND e.event_type = 'Started'), "
            f"(SELECT max(e.seq_no) FROM {events} e WHERE e.session_id = s.id), "
            f"(SELECT max(m.timestamp) FROM {meters} m WHERE m.session_id = s.id AND m.measurand = %s "
            "AND m.phase = ''), "
            f"EXISTS (SELECT 1 FROM {events} e WHERE e.session_id = s.id "
            "AND jsonb_exists(e.payload -> 'transactionInfo', 'stoppedReason')) "
            "FROM unnest(%s::bigint[], %s::text[]) AS k(charger_id, tx_id) "
            f"JOIN {sessions} s ON s.charger_id = k.charger_id AND s.ocpp_transaction_id = k.tx_id AND s.status = %s",
            [
                tx.ENERGY_REGISTER,
                [key[0] for key in keys],
                [key[1] for key in keys],
                ChargingSession.Status.ACTIVE.value,
            ],
        )
        rows = await cursor.fetchall()
    found: dict[tuple[int, str], SteadyFacts] = {}
    for (
        charger_id,
        tx_id,
        pk,
        connector_id,
        our_id,
        started_at,
        remote_start_id,
        driver,
        started,
        last_seq,
        energy_at,
        reasons,
    ) in rows:
        if started and last_seq is not None and energy_at is not None:
            found[(charger_id, tx_id)] = SteadyFacts(
                pk,
                connector_id,
                our_id,
                started_at,
                remote_start_id,
                last_seq,
                energy_at,
                reasons,
                driver,
            )
    return [found.get(key) for key in keys]


def session_phases_record(*, session_id: int, phases: int) -> None:
    """Keep the phases the car draws on (2.0.1 numberOfPhasesUsed) on its session."""
    ChargingSession.objects.filter(pk=session_id).update(phases_used=phases)


def read_transaction_event(
    payload: dict,
    received: datetime,
    schemas: Mapping[str, Any] = REQUEST_VALIDATORS,
    quirks: q.Quirks = q.NONE,
) -> tx.TxEvent:
    """`schemas`: the request schemas of the charger's version (2.1's for a 2.1 charger);
    `quirks`: the charger's known deviations (chargers.ocpp.quirks)."""
    return tx.read_event(payload, schemas["TransactionEvent"], received, quirks)


@dataclass
class TransactionEventOutcome:
    session: ChargingSession
    duplicate: bool  # this (transactionId, seqNo) was received before: nothing changed
    started: bool  # the session was created by this event
    ended: bool  # the session was completed by this event
    # Set when the event changed nothing but its readings: the session's last energy reading
    # before it. The connection may then append the next in-order Updated events in batches.
    steady_since: datetime | None = None


@dataclass
class TxAppend:
    """An in-order Updated (or Ended: `end`) event of a steady transaction (see
    `_steady_since`), to append."""

    charger_id: int
    session_id: int
    connector_id: int
    event: tx.TxEvent
    payload: dict  # storable: cleaned (storable.clean_value) by the caller when the frame needed it
    received_at: datetime
    end: closing.TxEnd | None = None
    payload_json: str | None = (
        None  # `payload` as compact JSON, when the caller has it (the log row's)
    )


def _written(items: list[TxAppend], active: set[int]) -> list[bool]:
    """Which items a batch writes: those of active sessions, except any that follows its
    session's Ended in the batch (it takes the full path, which refolds the ended session)."""
    ended: set[int] = set()
    written = []
    for item in items:
        write = item.session_id in active and item.session_id not in ended
        if write and item.end is not None:
            ended.add(item.session_id)
        written.append(write)
    return written


def transaction_events_append(items: list[TxAppend]) -> list[bool]:
    """Append in-order Updated events of steady transactions, of many chargers at once, in one
    database transaction: the event rows and their readings, nothing refolded (such an event
    cannot change its session, `_steady_since`). An Ended (`TxAppend.end`) also completes its
    session, as its fold would, and the session is announced finished once committed.

    The connection that sends a transaction's events knows it is steady and in order; what it
    cannot know is whether something else closed the session meanwhile (the stale-transaction
    check, an agent), so the sessions are locked and checked here. An item whose session is not
    active any more is not written (False): its caller takes the full path, which refolds.
    A repeated (transactionId, seqNo) fails the batch on the unique constraint; the coalescer then
    retries the items one by one and the failing caller takes the full path, which reports it.
    """
    with transaction.atomic():
        starts = dict(
            ChargingSession.objects.select_for_update()
            .filter(
                pk__in={item.session_id for item in items}, status=ChargingSession.Status.ACTIVE
            )
            .order_by("pk")
            .values_list("pk", "meter_start_wh")
        )
        written = _written(items, set(starts))
        events: list[TransactionEvent] = []
        meters: list[meter_values.MeterRow] = []
        for item, write in zip(items, written, strict=True):
            if not write:
                continue
            event = item.event
            events.append(
                TransactionEvent(
                    charger_id=item.charger_id,
                    session_id=item.session_id,
                    ocpp_transaction_id=event.transaction_id,
                    seq_no=event.seq_no,
                    event_type=event.event_type,
                    trigger_reason=event.trigger_reason,
                    timestamp=event.timestamp,
                    offline=event.offline,
                    payload=item.payload,
                    received_at=item.received_at,
                )
            )
            meters += meter_values.rows_of(
                item.charger_id, item.connector_id, item.session_id, event.meter_values
            )
        TransactionEvent.objects.bulk_create(events)
        meter_values.store_orm(meters)
        closing.close_ended_orm(
            [
                (item.session_id, closing.ended_row(item.end, starts[item.session_id]))
                for item, write in zip(items, written, strict=True)
                if write and item.end is not None
            ]
        )
    return written


_append_pg = async_pg.LoopConnection("ocpp-tx-append")


async def copy_events(
    cur: Any, rows: list[tuple[int, int, int, tx.TxEvent, dict | str, datetime]]
) -> None:
    """Write TransactionEvent rows and their readings by COPY on an async cursor (in its
    transaction): (charger, session, connector, event, storable payload or its compact JSON,
    received at) each."""
    async with cur.copy(
        f"COPY {TransactionEvent._meta.db_table} (charger_id, session_id, ocpp_transaction_id, seq_no, "
        "event_type, trigger_reason, timestamp, offline, payload, received_at) FROM STDIN"
    ) as copy:
        for charger_id, session_id, _, event, payload, received_at in rows:
            await copy.write_row(
                (
                    charger_id,
                    session_id,
                    event.transaction_id,
                    event.seq_no,
                    event.event_type,
                    event.trigger_reason,
                    event.timestamp,
                    event.offline,
                    payload
                    if isinstance(payload, str)
                    else json.dumps(payload, separators=(",", ":")),
                    received_at,
                )
            )
    await meter_values.store_copy(
        cur,
        (
            row
            for charger_id, session_id, connector_id, event, _, _ in rows
            for row in meter_values.rows_of(
                charger_id, connector_id, session_id, event.meter_values
            )
        ),
    )


async def transaction_events_append_batch(items: list[TxAppend]) -> list[bool]:
    """`transaction_events_append`, from the event loop: on PostgreSQL with COPY on an async
    connection (backoffice.async_pg; the ORM's model building and array dumping on a database
    thread held the GIL against the loop), elsewhere on the database pool. Same statements,
    same rules, one transaction per batch."""
    if not async_pg.enabled():
        return await db.run(transaction_events_append, items)

    async with _append_pg.use() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            f"SELECT id, meter_start_wh FROM {ChargingSession._meta.db_table} WHERE id = ANY(%s) "
            "AND status = %s ORDER BY id FOR UPDATE",
            [sorted({item.session_id for item in items}), ChargingSession.Status.ACTIVE.value],
        )
        starts = dict(await cur.fetchall())
        written = _written(items, set(starts))
        kept = [item for item, write in zip(items, written, strict=True) if write]
        ended = [
            (item.session_id, closing.ended_row(item.end, starts[item.session_id]))
            for item in kept
            if item.end is not None
        ]
        if kept:
            await copy_events(
                cur,
                [
                    (
                        item.charger_id,
                        item.session_id,
                        item.connector_id,
                        item.event,
                        item.payload if item.payload_json is None else item.payload_json,
                        item.received_at,
                    )
                    for item in kept
                ],
            )
            if ended:
                await closing.close_ended_copy(cur, ended)
    if ended:
        # Committed: announced before the chargers are answered, as the full path does.
        await db.run(sessions_announce, "finished", [session_id for session_id, _ in ended])
    return written


def appended_outcome(
    *, session_id: int, charger_id: int, connector_id: int, transaction_id: int, ended: bool = False
) -> TransactionEventOutcome:
    """The outcome of an appended event, for the handler's live updates (no database read)."""
    session = ChargingSession(
        pk=session_id,
        charger_id=charger_id,
        connector_id=connector_id,
        transaction_id=transaction_id,
    )
    return TransactionEventOutcome(session, duplicate=False, started=False, ended=ended)


_EVENT_FIELDS = [f for f in TransactionEvent._meta.concrete_fields if not f.primary_key]


def _event_insert(row: TransactionEvent) -> bool:
    """Insert one event unless its (charger, transactionId, seqNo) is stored; whether it was.
    One statement: a savepoint around a plain insert (to survive its IntegrityError) cost two
    more round trips on every event of the full path."""
    connection = connections["default"]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _EVENT_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(TransactionEvent._meta.db_table)} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(_EVENT_FIELDS))}) "
            "ON CONFLICT (charger_id, ocpp_transaction_id, seq_no) DO NOTHING RETURNING id",
            [f.get_db_prep_save(getattr(row, f.attname), connection) for f in _EVENT_FIELDS],
        )
        return cursor.fetchone() is not None


def _no_validation(payload: dict) -> None:
    """Stored events were validated (and their violations recorded) when they arrived."""


def _events_of(charger_id: int, transaction_id: str, quirks: q.Quirks) -> list[tx.TxEvent]:
    rows = TransactionEvent.objects.filter(
        charger_id=charger_id, ocpp_transaction_id=transaction_id
    ).only("payload", "received_at")
    return [tx.read_event(row.payload, _no_validation, row.received_at, quirks) for row in rows]


def _name_driver(
    session: ChargingSession,
    state: tx.TxState,
    event: tx.TxEvent,
    created: bool,
    id_tag_status: str | None,
) -> bool:
    """Take the driver the fold names; returns whether a running session learned its driver now."""
    if state.id_token and session.id_tag != state.id_token:
        named_driver = not session.id_tag and not created
        session.id_tag = state.id_token
        # A Plug & Charge contract's eMAID may name one of our cards by its contract id.
        session.token = token_find_presented(
            state.id_token,
            session.charger.organization_id,
            contract=state.id_token_type == "eMAID",
        )
        if id_tag_status:
            session.id_tag_status = id_tag_status[:12]
        return named_driver
    if (
        id_tag_status
        and event.id_token
        and event.id_token == session.id_tag
        and event.event_type == "Started"
    ):
        session.id_tag_status = id_tag_status[:12]
    return False


def _after_ended(session: ChargingSession, event: tx.TxEvent) -> bool:
    """Whether `event` is numbered after its session's stored Ended (v201_transactions.fold)."""
    if session.status != ChargingSession.Status.COMPLETED or event.seq_no is None:
        return False
    return TransactionEvent.objects.filter(
        session=session, event_type="Ended", seq_no__lt=event.seq_no
    ).exists()


def transaction_event_record(
    *,
    charger_id: int,
    payload: dict,
    received_at: datetime,
    id_tag_status: str | None = None,
    transaction_id: int | None = None,
    token_id: int | None = None,
    token_known: bool = False,
    event: tx.TxEvent | None = None,
    quirks: q.Quirks | None = None,
) -> TransactionEventOutcome:
    """Store one TransactionEvent and bring its session up to date. Never refuses.

    Idempotent by (transactionId, seqNo): a repeated event changes nothing. The session is
    recomputed from all events of the transaction in seqNo order, so late offline-queued
    events numbered before the Ended are taken into account and the order of arrival does not
    matter; events numbered after the Ended are stored and counted on the session
    (`late_events`) but never change it.
    `id_tag_status` is the authorization decision for the event's idToken, kept on the session
    when the event is the one that names its driver; `transaction_id` our integer id for a new
    session (one drawn during an outage and already used, at replay). `token_known`: the caller
    already looked up the event's idToken for this charger (`token_id`, None if no card matched).
    `event`: the caller's `read_transaction_event` of this same payload, so it is not read twice.
    `quirks`: the charger's known deviations, as its connection resolved them (None: resolved
    here); an event numbered after the Ended that they do not expect is added to
    `event.deviations` for the caller to record (a replayed one is recorded here).
    """
    if quirks is None:
        quirks = quirks_state.quirks_of_charger(charger_id)
    if event is None:
        event = read_transaction_event(payload, received_at, quirks=quirks)
    with transaction.atomic():
        session, created = opening.locked_or_opened(
            charger_id,
            event,
            token_id=token_id,
            token_known=token_known,
            id_tag_status=id_tag_status,
            transaction_id=transaction_id,
        )
        if not _event_insert(
            TransactionEvent(
                charger_id=charger_id,
                session=session,
                ocpp_transaction_id=event.transaction_id,
                seq_no=event.seq_no,
                event_type=event.event_type,
                trigger_reason=event.trigger_reason,
                # NaN/Infinity (legal in a frame, not in JSON columns) kept as text, never dropped.
                timestamp=event.timestamp,
                offline=event.offline,
                payload=clean_value(payload)[0],
                received_at=received_at,
            )
        ):
            return TransactionEventOutcome(session, duplicate=True, started=False, ended=False)
        steady_since = None if created else _steady_since(session, event)
        late = not created and _after_ended(session, event)
        if late:  # the late-event rule below keeps the session; the deviation is named
            q.met(
                event.deviations,
                quirks,
                q.UPDATED_AFTER_ENDED,
                f"{event.event_type} seqNo {event.seq_no} after the transaction's Ended",
            )
        # A late event's readings are kept apart from the closed session (charts, idle fees).
        meter_values.store_orm(
            meter_values.rows_of(
                charger_id,
                event.evse_id or session.connector_id,
                None if late else session.pk,
                event.meter_values,
            )
        )
        if steady_since is not None:
            return TransactionEventOutcome(
                session, duplicate=False, started=False, ended=False, steady_since=steady_since
            )

        # A session this event just created has no other event (events are stored with their
        # session, created here under the lock): its fold is this event's.
        state = tx.fold(
            [event] if created else _events_of(charger_id, event.transaction_id, quirks)
        )
        was_completed = session.status == ChargingSession.Status.COMPLETED
        before = closing.end_facts(session)
        session.started_at = state.started_at
        session.meter_start_wh = state.meter_start_wh
        if state.evse_id is not None:
            session.connector_id = state.evse_id
        named_driver = _name_driver(session, state, event, created, id_tag_status)
        session.remote_start_id = state.remote_start_id
        session.reservation_id = state.reservation_id
        ended_now = closing.close_by_fold(session, state, was_completed, before)
        if state.late_events != session.late_events:
            session.late_events = state.late_events
            session.late_event_at = received_at
        session.save()
        if created and not state.ended and session.connector_id:
            # An EVSE has one transaction at a time: one it left open (it lost power or rebooted
            # without an Ended) is closed at its last reading, as for 1.6; its own Ended, if it
            # still comes, replaces that estimate (fold above).
            # A queued older transaction arriving after a newer one is itself the one closed.
            opening.close_superseded_around(session)
        if created or named_driver:
            # A transaction started by plugging in names its driver in a later event: the
            # guest flow links the session then (guest.receivers).
            session_announce_on_commit("started", session.pk)
        if ended_now:
            session_announce_on_commit("finished", session.pk)
            session_flag_no_reading_on_commit(session)
        return TransactionEventOutcome(
            session,
            duplicate=False,
            started=created,
            ended=ended_now and not was_completed,
            steady_since=steady_from_its_first_event(session, event) if created else None,
        )


def steady_from_its_first_event(session: ChargingSession, event: tx.TxEvent) -> datetime | None:
    """A transaction that this event just opened, still active, is steady once it has an energy
    reading: it has no other events, so `_steady_since` would hold for the next in-order
    Updated. Returns that reading's time (see TransactionEventOutcome.steady_since)."""
    if (
        session.status != ChargingSession.Status.ACTIVE
        or event.event_type != "Started"
        or event.seq_no is None
    ):
        return None
    return tx.last_energy_reading_at(event)


# -- a Started, in batches on PostgreSQL ---------------------------------------------------------
#
# Through the full path (transaction_event_record) a Started was a transaction of its own on the
# database pool: the decision's insert, a locked look-up, the session's insert and a second save
# after the fold, the event, its readings, the superseded check. In a 3,000-charger connect storm
# that made 2.0.1 chargers twice as slow to come up as 1.6 ones. The batch opens the Started
# events waiting at one moment together: their decisions and sessions inserted (`opening.opened_by`, `opening.insert_opened`),
# their events and readings written by COPY, and the sessions announced as started once
# committed, before the chargers are answered.
#
# It takes the common Started only: the first of its connector and of its transaction in the
# batch (`rules.first_in_batch`), whose transaction has no session yet, on a connector with no
# running session. Everything else, a resent or late Started, one that supersedes a running
# session, a batch the database refuses, goes through the full path after the batch.


@dataclass(frozen=True)
class StartedRequest:
    """A decided TransactionEvent Started, with what `transaction_event_record` takes."""

    charger_id: int
    event: tx.TxEvent
    payload: dict  # as received
    storable: dict  # the payload as stored (storable.clean_value)
    received_at: datetime
    transaction_id: int  # ours, drawn by the handler
    id_tag_status: str | None  # the decision's status on the event's idToken
    token_id: int | None  # the card the decision found
    decision_record: dict[str, Any] | None  # decision_record's arguments, stored with the session
    quirks: q.Quirks = q.NONE  # the charger's known deviations (its connection's)


def started_orm(item: StartedRequest) -> TransactionEventOutcome:
    """A Started through the full path, with its decision, in one transaction."""
    with transaction.atomic():
        if item.decision_record is not None:
            decision_record(**item.decision_record)
        return transaction_event_record(
            charger_id=item.charger_id,
            payload=item.payload,
            received_at=item.received_at,
            id_tag_status=item.id_tag_status,
            transaction_id=item.transaction_id,
            token_id=item.token_id,
            token_known=True,
            event=item.event,
            quirks=item.quirks,
        )


def _started_pool(items: list[StartedRequest]) -> list[TransactionEventOutcome]:
    return [started_orm(item) for item in items]


_started_conn = async_pg.LoopConnection("ocpp-tx-started")


async def started_batched(items: list[StartedRequest]) -> list[TransactionEventOutcome]:
    """`started_orm` of each item, the common ones together (see above)."""
    sessions = [
        opening.opened_by(
            item.charger_id,
            item.event,
            token_id=item.token_id,
            id_tag_status=item.id_tag_status,
            transaction_id=item.transaction_id,
        )
        for item in items
    ]
    candidates = rules.first_in_batch(
        [
            [
                ("connector", s.charger_id, s.connector_id),
                ("tx", s.charger_id, s.ocpp_transaction_id),
            ]
            for s in sessions
        ]
    )
    opened: dict[int, TransactionEventOutcome] = {}
    try:
        async with _started_conn.use() as conn, conn.transaction(), conn.cursor() as cur:
            chosen = await opening.free_for_events(cur, sessions, candidates)
            if chosen:
                await _insert_started(
                    cur, [items[i] for i in chosen], [sessions[i] for i in chosen]
                )
                for i in chosen:
                    opened[i] = TransactionEventOutcome(
                        sessions[i],
                        duplicate=False,
                        started=True,
                        ended=False,
                        steady_since=steady_from_its_first_event(sessions[i], items[i].event),
                    )
    except (psycopg.IntegrityError, psycopg.errors.DeadlockDetected):
        opened = {}  # rolled back: every start takes the full path, which sorts each out
    if opened:
        # Committed: announced before the chargers are answered, as the full path does.
        await db.run(sessions_announce, "started", [o.session.pk for o in opened.values()])
    return await the_rest_one_by_one(opened, items, started_orm)


async def _insert_started(
    cur: Any, items: list[StartedRequest], sessions: list[ChargingSession]
) -> None:
    """Insert the decisions, sessions, events and readings of the Started events a batch takes."""
    await opening.insert_opened(cur, [item.decision_record for item in items], sessions)
    await copy_events(
        cur,
        [
            (
                session.charger_id,
                session.pk,
                session.connector_id,
                item.event,
                item.storable,
                item.received_at,
            )
            for item, session in zip(items, sessions, strict=True)
        ],
    )


_starts: Coalescer[StartedRequest, TransactionEventOutcome] = Coalescer(
    "tx-started", apply_async=on_pg_or_pool(started_batched, _started_pool)
)


async def started(item: StartedRequest) -> TransactionEventOutcome:
    """Store a Started and open its session (`transaction_event_record`), batched with the
    others waiting."""
    return await _starts.submit(item)


def started_batches() -> int:
    """How many batches the Started events took (tests)."""
    return _starts.batches


def session_id_tag_status(*, charger_id: int, transaction_id: str) -> str | None:
    """The idTokenInfo status answered when the session of this 2.0.1 transaction started."""
    return (
        ChargingSession.objects.filter(charger_id=charger_id, ocpp_transaction_id=transaction_id)
        .values_list("id_tag_status", flat=True)
        .first()
    )


def session_ocpp_transaction_id(*, charger_id: int, transaction_id: int) -> str | None:
    """The charger's 2.0.1 transactionId of the session we know as `transaction_id`."""
    return (
        ChargingSession.objects.filter(charger_id=charger_id, transaction_id=transaction_id)
        .exclude(ocpp_transaction_id="")
        .values_list("ocpp_transaction_id", flat=True)
        .first()
    )


# -- journal replay: 2.0.1 messages answered while the database was unreachable -----------------


def journal_apply_entry(entry: dict, received: datetime) -> None:
    """Apply one journaled 2.0.1 entry (called by chargers.sessions.replay.journal_apply, which makes
    it exactly-once). BootNotification, StatusNotification and MeterValues are journaled in the
    1.6 shape and replayed by the 1.6 path; TransactionEvent comes here."""
    if entry["action"] != "TransactionEvent":
        raise ValueError(f"unknown 2.0.1 journal entry {entry['action']!r}")
    quirks = quirks_state.quirks_of_charger(entry["charger_id"])
    event = read_transaction_event(entry["payload"], received, quirks=quirks)
    outcome = transaction_event_record(
        charger_id=entry["charger_id"],
        payload=entry["payload"],
        received_at=received,
        transaction_id=entry.get("transaction_id"),
        event=event,
        quirks=quirks,
    )
    if event.deviations:
        quirks_state.observed(
            charger_id=entry["charger_id"],
            found=event.deviations,
            example=quirks_state.example_frame(
                "TransactionEvent", entry.get("unique_id", ""), entry["payload"]
            ),
            at=received,
        )
    if (
        outcome.started and outcome.session.id_tag
    ):  # in journal_apply's transaction, with the session
        from chargers.sessions.services import decision_for_replayed_start

        record = decision_for_replayed_start(
            charger_id=entry["charger_id"],
            id_tag=outcome.session.id_tag,
            connector_id=outcome.session.connector_id,
            unique_id=entry.get("unique_id", ""),
        )
        if record is not None:
            decision_record(**record)


TRIGGER_VALID_S = 300


def trigger_accepted_recently(
    *, charger_id: int, message: str, within_s: int = TRIGGER_VALID_S
) -> bool:
    """Whether the charger accepted a TriggerMessage for `message` within the last `within_s`
    seconds (B02.FR.09: a Pending station may send what it was asked for)."""
    from datetime import timedelta

    from chargers.models import Command

    since = timezone.now() - timedelta(seconds=within_s)
    commands = Command.objects.filter(
        charger_id=charger_id,
        action="TriggerMessage",
        status=Command.Status.ANSWERED,
        created_at__gte=since,
    ).only("payload", "response")
    return any(
        c.payload.get("requestedMessage") == message and c.result_status == "Accepted"
        for c in commands
    )
