"""OCPP 2.0.1 TransactionEvent Started in batches: on PostgreSQL one transaction on the event
loop's own connection for every Started waiting at once.

Through the full path (services_v201.transaction_event_record) a Started was a transaction of
its own on the database pool: the decision's insert, a locked look-up, the session's insert and
a second save after the fold, the event, its readings, the superseded check. In a 3,000-charger
connect storm that made 2.0.1 chargers twice as slow to come up as 1.6 ones, whose starts are
batched (chargers.starts). Here the Started events waiting at one moment are opened together:
their decisions and sessions inserted, their events and readings written by COPY, and the
sessions announced as started once committed, before the chargers are answered.

The batch takes the common Started only: the first of its transaction (no session has its
transactionId yet) on a connector with no running session. Everything else, a resent or late
Started, one that supersedes a running session, two starts of one connector or transaction in
one batch, a batch the database refuses, goes through the full path after the batch, which
handles each of those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import transaction

from authorization.models import AuthorizationDecision
from authorization.services import decision_build, decision_record
from backoffice import async_pg, db

from . import services, services_v201
from .batching import Coalescer, on_pg_or_pool, the_rest_one_by_one
from .models import ChargingSession
from .ocpp import v201_transactions as tx


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


def _started_orm(item: StartedRequest) -> services_v201.TransactionEventOutcome:
    with transaction.atomic():
        if item.decision_record is not None:
            decision_record(**item.decision_record)
        return services_v201.transaction_event_record(
            charger_id=item.charger_id,
            payload=item.payload,
            received_at=item.received_at,
            id_tag_status=item.id_tag_status,
            transaction_id=item.transaction_id,
            token_id=item.token_id,
            token_known=True,
            event=item.event,
        )


def _started_pool(items: list[StartedRequest]) -> list[services_v201.TransactionEventOutcome]:
    return [_started_orm(item) for item in items]


def _session(item: StartedRequest) -> ChargingSession:
    """The session the full path leaves for a Started that opens it: the fold of its one event."""
    state = tx.fold([item.event])
    return ChargingSession(
        charger_id=item.charger_id,
        connector_id=state.evse_id or 0,
        id_tag=state.id_token,
        token_id=item.token_id,
        id_tag_status=(item.id_tag_status or "Accepted")[:12],
        started_at=state.started_at,
        meter_start_wh=state.meter_start_wh,
        ocpp_transaction_id=item.event.transaction_id,
        transaction_id=item.transaction_id,
        remote_start_id=state.remote_start_id,
        reservation_id=state.reservation_id,
    )


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
_conn = async_pg.LoopConnection("ocpp-tx-started")


async def _started_pg(items: list[StartedRequest]) -> list[services_v201.TransactionEventOutcome]:
    sessions = [_session(item) for item in items]
    connectors: set[tuple[int, int]] = set()
    transactions: set[tuple[int, str]] = set()
    candidates: list[int] = []  # the first start of each connector and transaction in the batch
    for index, session in enumerate(sessions):
        connector = (session.charger_id, session.connector_id)
        named = (session.charger_id, session.ocpp_transaction_id)
        if connector not in connectors and named not in transactions:
            candidates.append(index)
        connectors.add(connector)
        transactions.add(named)
    opened: dict[int, services_v201.TransactionEventOutcome] = {}
    try:
        async with _conn.use() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                _TAKEN,
                [
                    [sessions[i].charger_id for i in candidates],
                    [sessions[i].connector_id for i in candidates],
                    [sessions[i].ocpp_transaction_id for i in candidates],
                    ChargingSession.Status.ACTIVE.value,
                ],
            )
            taken = {candidates[row[0] - 1] for row in await cur.fetchall()}
            chosen = [i for i in candidates if i not in taken]
            if chosen:
                records = [items[i].decision_record for i in chosen]
                decisions = [decision_build(**record) for record in records if record is not None]
                if decisions:
                    sql, fields = async_pg.insert_sql(AuthorizationDecision, len(decisions))
                    await cur.execute(sql, async_pg.insert_values(decisions, fields))
                sql, fields = async_pg.insert_sql(ChargingSession, len(chosen))
                await cur.execute(
                    sql + " RETURNING id, transaction_id",
                    async_pg.insert_values([sessions[i] for i in chosen], fields),
                )
                ids = {transaction_id: pk for pk, transaction_id in await cur.fetchall()}
                for i in chosen:
                    session = sessions[i]
                    session.pk = ids[session.transaction_id]
                    session._state.adding, session._state.db = False, "default"
                await services_v201.copy_events(
                    cur,
                    [
                        (
                            sessions[i].charger_id,
                            sessions[i].pk,
                            sessions[i].connector_id,
                            items[i].event,
                            items[i].storable,
                            items[i].received_at,
                        )
                        for i in chosen
                    ],
                )
                for i in chosen:
                    opened[i] = services_v201.TransactionEventOutcome(
                        sessions[i],
                        duplicate=False,
                        started=True,
                        ended=False,
                        steady_since=services_v201.steady_from_its_first_event(
                            sessions[i], items[i].event
                        ),
                    )
    except psycopg.IntegrityError:
        opened = {}  # rolled back: every start takes the full path, which sorts each out
    if opened:
        # Committed: announced before the chargers are answered, as the full path does.
        await db.run(services.sessions_announce, "started", [o.session.pk for o in opened.values()])
    return await the_rest_one_by_one(opened, items, _started_orm)


_starts: Coalescer[StartedRequest, services_v201.TransactionEventOutcome] = Coalescer(
    "tx-started", apply_async=on_pg_or_pool(_started_pg, _started_pool)
)


async def started(item: StartedRequest) -> services_v201.TransactionEventOutcome:
    """Store a Started and open its session (`transaction_event_record`), batched with the
    others waiting."""
    return await _starts.submit(item)


def batches() -> int:
    """How many batches the Started events took (tests)."""
    return _starts.batches
