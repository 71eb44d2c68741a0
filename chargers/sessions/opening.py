"""Every open of a session lives here (issue 50 item 3), the ORM path and the batched PostgreSQL
path side by side over the rules of chargers.sessions.rules:

- a 1.6 StartTransaction: `open_orm` one start at a time, `open_batched` the decided starts
  waiting at one moment together;
- a 2.0.1 transaction's first stored event (a Started, or whichever event came first): the
  session it opens is built by `opened_by` for both paths; the full path opens it with
  `locked_or_opened`, the batched Started (chargers.sessions.transactions.started_batched) asks
  `free_for_events` which it may open and inserts them with `insert_opened`, as the 1.6 batch does;
- and in each start's own transaction, the closing of what it supersedes
  (`close_superseded_around`).

A connector runs one session at a time. Every open takes its connector's lock (`connector_lock`,
`connectors_lock`: PostgreSQL advisory locks held to the end of the transaction) before it looks
for the sessions it supersedes or the running ones it must leave alone; under READ COMMITTED that
look-up then sees a start that committed while it waited. Without it two different starts on one
connector at once (two sockets of one charger, a journal replayed beside live frames) each found
the connector free and both ran. The batches lock their connectors in one statement, in order.

Once decided, a start is recorded in one transaction: its decision, its session, and the closing
of what it supersedes. Through the ORM that was a fifth of a connect storm's GIL time (two
inserts, a select-for-update, the commit hooks); the batch inserts its starts together. It takes
the first start of each connector in the batch, on a connector with no running session. A start
on a busy connector (it supersedes a session, or a newer start already arrived), a second start
of one connector in the batch, and a batch the database refuses (a resent start that raced its
first, a transaction id already taken) take `open_orm` instead, which handles each of those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction

from authorization.models import AuthorizationDecision, Token
from authorization.services import decision_build, token_find, token_find_presented
from authorization.services import decision_record as record_decision
from backoffice import async_pg, db
from chargers.models import Charger, ChargingSession
from chargers.plumbing.batching import Coalescer, on_pg_or_pool, the_rest_one_by_one
from chargers.sessions import rules
from chargers.sessions import v201_transactions as tx
from chargers.sessions.closing import close_as_superseded
from chargers.sessions.services import (
    new_transaction_id,
    session_announce_on_commit,
    session_find_repeat,
    sessions_announce,
)

logger = logging.getLogger(__name__)

_LOOK_UP: Any = object()


@dataclass(frozen=True)
class OpenRequest:
    """A StartTransaction to record. `transaction_id` is the id answered to the charger (drawn
    by the handler, or one journaled during a database outage, replayed now); None: draw one.
    `token` is the card a caller already looked up (`starts.start_prepare`), or `_LOOK_UP`;
    `decision_record` the decision to store with the session, in the same transaction."""

    charger_id: int
    connector_id: int
    id_tag: str
    meter_start: Decimal
    started_at: datetime
    transaction_id: int | None = None
    id_tag_status: str = "Accepted"
    reservation_id: int | None = None
    token: Token | None = _LOOK_UP
    decision_record: dict[str, Any] | None = None

    def row(self, transaction_id: int) -> dict[str, Any]:
        return rules.opened_row(
            charger_id=self.charger_id,
            connector_id=self.connector_id,
            id_tag=self.id_tag,
            id_tag_status=self.id_tag_status,
            started_at=self.started_at,
            meter_start_wh=self.meter_start,
            transaction_id=transaction_id,
            reservation_id=self.reservation_id,
        )


# Two-key advisory locks are the connectors': (charger id, connector id), each as an int4.
_CONNECTOR_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"
_CONNECTORS_LOCK = (
    "SELECT pg_advisory_xact_lock(v.charger, v.connector) FROM "
    "unnest(%s::int[], %s::int[]) WITH ORDINALITY AS v(charger, connector, ord) ORDER BY v.ord"
)
_INT4 = 2**31


def _lock_keys(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # In one order for every batch, so two batches never wait for each other in a circle.
    return sorted(
        {(charger_id % _INT4, connector_id % _INT4) for charger_id, connector_id in pairs}
    )


def connector_lock(charger_id: int, connector_id: int) -> None:
    """Take the connector's lock in the current transaction (see the module's doc). SQLite
    serializes every write transaction anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_CONNECTOR_LOCK, _lock_keys([(charger_id, connector_id)])[0])


async def connectors_lock(cur: Any, pairs: list[tuple[int, int]]) -> None:
    """`connector_lock` of each (charger id, connector id) on an async cursor, in one statement."""
    keys = _lock_keys(pairs)
    if keys:
        await cur.execute(_CONNECTORS_LOCK, [[k[0] for k in keys], [k[1] for k in keys]])


def close_superseded_around(session: ChargingSession) -> None:
    """In the start's own transaction, with one statement when the connector is free: close the
    sessions this start supersedes (older, still active on the connector), or this one when a
    newer start already arrived (`rules.superseded`). Both versions' starts call this; the
    connector's lock is taken first, if the caller has not."""
    connector_lock(session.charger_id, session.connector_id)
    others = list(
        ChargingSession.objects.select_for_update()
        .filter(
            charger_id=session.charger_id,
            connector_id=session.connector_id,
            status=ChargingSession.Status.ACTIVE,
        )
        .exclude(pk=session.pk)
    )
    older, newer_exists = rules.superseded(
        (session.started_at, session.pk), [(o.started_at, o.pk) for o in others]
    )
    for index in older:
        close_as_superseded(others[index])
    if newer_exists:
        close_as_superseded(session)


# -- a 1.6 start, one by one through the ORM -----------------------------------------------------


def _find_repeat(item: OpenRequest) -> ChargingSession | None:
    return session_find_repeat(
        charger_id=item.charger_id,
        connector_id=item.connector_id,
        id_tag=item.id_tag,
        meter_start=item.meter_start,
        started_at=item.started_at,
    )


def _answered_before(item: OpenRequest, transaction_id: int | None) -> ChargingSession | None:
    """The session already opened under the id we answered, for the same start: a resend
    journaled during an outage whose time was replaced by its own receive time (a wrong clock)
    carries the id its first copy got, not the same time."""
    if transaction_id is None:
        return None
    return ChargingSession.objects.filter(
        transaction_id=transaction_id,
        charger_id=item.charger_id,
        connector_id=item.connector_id,
        id_tag=item.id_tag,
        meter_start_wh=item.meter_start,
    ).first()


def open_orm(item: OpenRequest) -> ChargingSession:
    """Open a session and give it a fresh transaction id; a resent start gets the same one."""
    token = item.token
    if token is _LOOK_UP:
        existing = _find_repeat(item)
        if existing:
            return existing
        charger = Charger.objects.select_related("property").get(pk=item.charger_id)
        place = charger.property if charger.property_id else None
        token = token_find(item.id_tag, place.organization_id if place is not None else None)
    transaction_id = item.transaction_id
    for _ in range(10):
        try:
            with transaction.atomic():
                connector_lock(item.charger_id, item.connector_id)
                if item.decision_record is not None:
                    record_decision(**item.decision_record)
                session = ChargingSession.objects.create(
                    token=token, **item.row(transaction_id or new_transaction_id())
                )
                session_announce_on_commit("started", session.pk)
                close_superseded_around(session)
        except IntegrityError:
            existing = _find_repeat(item) or _answered_before(item, transaction_id)
            if existing:
                return existing
            if transaction_id is not None:
                # The answered id was taken meanwhile (astronomically rare): keep the data.
                logger.error(
                    "Transaction id %s answered during an outage is taken; drawing another",
                    transaction_id,
                )
                transaction_id = None
            continue  # transaction id collision: draw again
        return session
    raise RuntimeError("Could not allocate a transaction id")


def _open_pool(items: list[OpenRequest]) -> list[ChargingSession]:
    return [open_orm(item) for item in items]


# -- 1.6 starts in batches, on PostgreSQL --------------------------------------------------------

_BUSY = (
    f'SELECT s.charger_id, s.connector_id FROM "{ChargingSession._meta.db_table}" AS s '
    "JOIN unnest(%s::bigint[], %s::bigint[]) AS v(charger_id, connector_id) "
    "ON s.charger_id = v.charger_id AND s.connector_id = v.connector_id WHERE s.status = %s"
)
_open_conn = async_pg.LoopConnection("ocpp-session-start")


async def open_batched(items: list[OpenRequest]) -> list[ChargingSession]:
    """`open_orm` of each decided start (`token` and `transaction_id` given), the common ones in
    one transaction (see the module's doc)."""
    first = rules.first_in_batch([[(i.charger_id, i.connector_id)] for i in items])
    opened: dict[int, ChargingSession] = {}
    try:
        async with _open_conn.use() as conn, conn.transaction():
            await connectors_lock(
                conn, [(items[i].charger_id, items[i].connector_id) for i in first]
            )
            cursor = await conn.execute(
                _BUSY,
                [
                    [items[i].charger_id for i in first],
                    [items[i].connector_id for i in first],
                    rules.ACTIVE,
                ],
            )
            busy = set(await cursor.fetchall())
            chosen = [i for i in first if (items[i].charger_id, items[i].connector_id) not in busy]
            if chosen:
                sessions = [
                    ChargingSession(token=items[i].token, **items[i].row(_answered(items[i])))
                    for i in chosen
                ]
                async with conn.cursor() as cur:
                    await insert_opened(cur, [items[i].decision_record for i in chosen], sessions)
                opened.update(zip(chosen, sessions, strict=True))
    except (psycopg.IntegrityError, psycopg.errors.DeadlockDetected):
        opened = {}  # rolled back: every start takes open_orm, which sorts each out
    if opened:
        await db.run(sessions_announce, "started", [s.pk for s in opened.values()])
    return await the_rest_one_by_one(opened, items, open_orm)


def _answered(item: OpenRequest) -> int:
    assert item.transaction_id is not None and item.token is not _LOOK_UP, "a decided start"
    return item.transaction_id


_opens: Coalescer[OpenRequest, ChargingSession] = Coalescer(
    "session-start", apply_async=on_pg_or_pool(open_batched, _open_pool)
)


async def session_start(item: OpenRequest) -> ChargingSession:
    """Open the session of a decided StartTransaction, batched with the others waiting."""
    return await _opens.submit(item)


def open_batches() -> int:
    """How many batches the session starts took (tests)."""
    return _opens.batches


# -- shared by both batches ----------------------------------------------------------------------


async def insert_opened(
    cur: Any, records: list[dict[str, Any] | None], sessions: list[ChargingSession]
) -> None:
    """Insert decided starts' decisions (`decision_record`'s arguments, None: none) and their
    sessions on an async cursor, in the caller's transaction; the sessions get their ids."""
    decisions = [decision_build(**record) for record in records if record is not None]
    if decisions:
        sql, fields = async_pg.insert_sql(AuthorizationDecision, len(decisions))
        await cur.execute(sql, async_pg.insert_values(decisions, fields))
    sql, fields = async_pg.insert_sql(ChargingSession, len(sessions))
    await cur.execute(
        sql + " RETURNING id, transaction_id", async_pg.insert_values(sessions, fields)
    )
    ids = {transaction_id: pk for pk, transaction_id in await cur.fetchall()}
    for session in sessions:
        session.pk = ids[session.transaction_id]
        session._state.adding, session._state.db = False, "default"


# -- a 2.0.1 transaction's first event -----------------------------------------------------------


def opened_by(
    charger_id: int,
    event: tx.TxEvent,
    *,
    token_id: int | None,
    id_tag_status: str | None,
    transaction_id: int,
) -> ChargingSession:
    """The session the first stored event of a transaction opens (a Started, or whichever event
    came first): the fold of that one event. Both paths that open one build it here."""
    state = tx.fold([event])
    return ChargingSession(
        token_id=token_id,
        **rules.opened_row(
            charger_id=charger_id,
            connector_id=state.evse_id or 0,
            id_tag=state.id_token,
            id_tag_status=id_tag_status,
            started_at=state.started_at,
            meter_start_wh=state.meter_start_wh,
            transaction_id=transaction_id,
            reservation_id=state.reservation_id,
            ocpp_transaction_id=event.transaction_id,
            remote_start_id=state.remote_start_id,
        ),
    )


def _event_token_id(
    charger_id: int, event: tx.TxEvent, token_id: int | None, token_known: bool
) -> int | None:
    """The card of a new session's first event (looked up unless the caller already did)."""
    if not event.id_token:
        return None
    if token_known:
        return token_id
    organization_id = (
        Charger.objects.filter(pk=charger_id)
        .values_list("property__organization_id", flat=True)
        .first()
    )
    token = token_find_presented(
        event.id_token, organization_id, contract=event.id_token_type == "eMAID"
    )
    return token.pk if token is not None else None


def locked_or_opened(
    charger_id: int,
    event: tx.TxEvent,
    *,
    token_id: int | None,
    token_known: bool,
    id_tag_status: str | None,
    transaction_id: int | None,
) -> tuple[ChargingSession, bool]:
    """The session of this event's transaction, locked, or one opened now (and whether it was)."""
    session = (
        ChargingSession.objects.select_for_update()
        .filter(charger_id=charger_id, ocpp_transaction_id=event.transaction_id)
        .first()
    )
    if session is not None:
        return session, False
    token_id = _event_token_id(charger_id, event, token_id, token_known)
    for _ in range(10):
        try:
            with transaction.atomic():
                session = opened_by(
                    charger_id,
                    event,
                    token_id=token_id,
                    id_tag_status=id_tag_status,
                    transaction_id=transaction_id or new_transaction_id(),
                )
                connector_lock(charger_id, session.connector_id)  # before the insert: no wait held
                session.save(force_insert=True)
            return session, True
        except IntegrityError:
            # Another event of this transaction opened it meanwhile: locked like the first
            # look-up, so two events that lost that race fold one after the other (unlocked,
            # each saved a fold without the other's event: an Ended could be undone).
            session = (
                ChargingSession.objects.select_for_update()
                .filter(charger_id=charger_id, ocpp_transaction_id=event.transaction_id)
                .first()
            )
            if session is not None:
                return session, False
            transaction_id = None  # our integer id collided: draw another
    raise RuntimeError("Could not allocate a transaction id")


_TABLE = ChargingSession._meta.db_table
# The items the batch must leave to the full path: the connector runs a session (this start
# supersedes it, or it is newer), or the transaction has a session already (a resend, or a
# later event of it arrived first).
_TAKEN = (
    "SELECT v.ord FROM unnest(%s::bigint[], %s::int[], %s::text[]) WITH ORDINALITY "
    "AS v(charger_id, connector_id, tx_id, ord) "
    f'WHERE EXISTS (SELECT 1 FROM "{_TABLE}" s WHERE s.charger_id = v.charger_id '
    "AND s.connector_id = v.connector_id AND s.status = %s) "
    f'OR EXISTS (SELECT 1 FROM "{_TABLE}" s WHERE s.charger_id = v.charger_id AND s.ocpp_transaction_id = v.tx_id)'
)


async def free_for_events(
    cur: Any, sessions: list[ChargingSession], candidates: list[int]
) -> list[int]:
    """Which of the `candidates` (indexes into `sessions`, built by `opened_by`) a batch may
    open: not those whose connector runs a session or whose transaction has one (`_TAKEN`).
    Their connectors' locks are taken first, held to the end of the caller's transaction."""
    await connectors_lock(
        cur, [(sessions[i].charger_id, sessions[i].connector_id) for i in candidates]
    )
    await cur.execute(
        _TAKEN,
        [
            [sessions[i].charger_id for i in candidates],
            [sessions[i].connector_id for i in candidates],
            [sessions[i].ocpp_transaction_id for i in candidates],
            rules.ACTIVE,
        ],
    )
    taken = {candidates[row[0] - 1] for row in await cur.fetchall()}
    return [i for i in candidates if i not in taken]
