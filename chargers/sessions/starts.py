"""What deciding on a card needs (StartTransaction, Authorize), read in batches: on PostgreSQL
three plain statements on the event loop's own connection for every start waiting at once.

Read through the ORM (`services.start_prepare`: the repeated-start check, the charger with its
property and token groups, reservations, the card with its MSP and groups) a start cost five
compiled queries on the database pool; in a 3,000-charger connect storm that was a quarter of
the server's time, most of it in Django's query compiler (py-spy, docs/performance.md
"Session 8"). The statements here are fixed strings, the rows become the same model instances
and facts (`services.charger_facts`, `authorization.services.token_choose` / `token_facts`), so
the decision is the one the ORM path makes.

The batch answers the common case only. A start that repeats an earlier one (our answer was
lost), a charger with an active reservation, a card tied to a stay or limited to one session at
a time: each is read by the ORM path instead, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from authorization.decisions import ChargerFacts, TokenFacts
from authorization.models import (
    MobilityServiceProvider,
    Token,
    TokenGroup,
    normalize_uid,
)
from authorization.services import TOKEN_CANDIDATES, token_choose, token_facts
from backoffice import async_pg
from backoffice.models import Property
from chargers.models import Charger, ChargingSession, ConnectorReservation
from chargers.plumbing.batching import Coalescer, on_pg_or_pool, the_rest_one_by_one
from chargers.sessions import rules, services


@dataclass(frozen=True)
class FactsQuery:
    """A decision on `id_tag` at a charger's connector (None: Authorize, the charger as a whole);
    `start` = (meter_start, started_at) of a StartTransaction, whose repeat is looked for."""

    charger_id: int
    connector_id: int | None
    id_tag: str
    start: tuple[Decimal, datetime] | None = None
    clock_wrong: bool = False  # the start's time is its receive time (services.session_find_repeat)


def _prepare_orm(query: FactsQuery) -> services.StartFacts:
    if query.start is not None:
        assert query.connector_id is not None
        return services.start_prepare(
            charger_id=query.charger_id,
            connector_id=query.connector_id,
            id_tag=query.id_tag,
            meter_start=query.start[0],
            started_at=query.start[1],
            clock_wrong=query.clock_wrong,
        )
    return services.StartFacts(
        None,
        *services.decision_inputs(
            charger_id=query.charger_id,
            connector_id=query.connector_id,
            id_tag=query.id_tag,
        ),
    )


def _prepare_pool(queries: list[FactsQuery]) -> list[services.StartFacts]:
    return [_prepare_orm(query) for query in queries]


def _columns(model: Any, alias: str) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


def _names(model: Any) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _m2m(model: Any, name: str) -> tuple[str, str, str]:
    """(table, column of `model`'s side, column of the other side) of a many-to-many field."""
    field = model._meta.get_field(name)
    return field.m2m_db_table(), field.m2m_column_name(), field.m2m_reverse_name()


_CHARGER_GROUPS = _m2m(Charger, "token_groups")  # (table, charger_id, tokengroup_id)
_RESTRICTED = _m2m(TokenGroup, "restricted_properties")  # (table, tokengroup_id, property_id)
_TOKEN_GROUPS = _m2m(TokenGroup, "tokens")  # (table, tokengroup_id, token_id)
_N_CHARGER, _N_PROPERTY = len(Charger._meta.concrete_fields), len(Property._meta.concrete_fields)
_N_TOKEN, _N_MSP = (
    len(Token._meta.concrete_fields),
    len(MobilityServiceProvider._meta.concrete_fields),
)

# Per query: whether an identical start exists (session_find_repeat) and whether the charger
# holds an active reservation (then reserved_for decides, on the ORM path).
_FLAGS = (
    "SELECT v.ord, "
    f'EXISTS (SELECT 1 FROM "{ChargingSession._meta.db_table}" AS s WHERE v.meter IS NOT NULL '
    "AND s.charger_id = v.charger_id AND s.connector_id = v.connector_id AND s.id_tag = v.id_tag "
    "AND s.meter_start_wh = v.meter AND (s.started_at = v.started_at OR (v.clock_wrong "
    f"AND s.status = '{rules.ACTIVE}' AND s.started_at <= v.started_at AND s.started_at > "
    f"v.started_at - interval '{int(rules.CLOCK_WRONG_REPEAT_WINDOW.total_seconds())} seconds'))), "
    f'EXISTS (SELECT 1 FROM "{ConnectorReservation._meta.db_table}" AS r WHERE r.charger_id = v.charger_id '
    "AND r.status = %s) "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::numeric[], %s::timestamptz[], "
    "%s::bool[]) WITH ORDINALITY "
    "AS v(charger_id, connector_id, id_tag, meter, started_at, clock_wrong, ord)"
)
_CHARGERS = (
    f"SELECT {_columns(Charger, 'c')}, {_columns(Property, 'p')}, ARRAY("
    f'SELECT g."{_CHARGER_GROUPS[2]}" FROM "{_CHARGER_GROUPS[0]}" AS g WHERE g."{_CHARGER_GROUPS[1]}" = c.id '
    f'UNION SELECT r."{_RESTRICTED[1]}" FROM "{_RESTRICTED[0]}" AS r WHERE r."{_RESTRICTED[2]}" = c.property_id) '
    f'FROM "{Charger._meta.db_table}" AS c LEFT JOIN "{Property._meta.db_table}" AS p ON p.id = c.property_id '
    "WHERE c.id = ANY(%s)"
)
_TOKENS = (
    f"SELECT {_columns(Token, 't')}, {_columns(MobilityServiceProvider, 'm')}, ARRAY("
    f'SELECT g."{_TOKEN_GROUPS[1]}" FROM "{_TOKEN_GROUPS[0]}" AS g WHERE g."{_TOKEN_GROUPS[2]}" = t.id) '
    f'FROM (SELECT *, row_number() OVER (PARTITION BY uid_normalized ORDER BY id) AS n FROM "{Token._meta.db_table}" '
    "WHERE uid_normalized = ANY(%s)) AS t "
    f'LEFT JOIN "{MobilityServiceProvider._meta.db_table}" AS m ON m.id = t.msp_id '
    "WHERE t.n <= %s ORDER BY t.id"
)

_pg = async_pg.LoopConnection("ocpp-decision-facts")


async def _prepare_pg(queries: list[FactsQuery]) -> list[services.StartFacts]:
    uids = {normalize_uid(q.id_tag) for q in queries}
    async with _pg.use() as conn:
        cursor = await conn.execute(
            _FLAGS,
            [
                ConnectorReservation.Status.ACTIVE,
                [q.charger_id for q in queries],
                [q.connector_id for q in queries],
                [q.id_tag[:36] for q in queries],
                [q.start[0] if q.start else None for q in queries],
                [q.start[1] if q.start else None for q in queries],
                [q.clock_wrong for q in queries],
            ],
        )
        flags = {ord_ - 1: (repeat, reserved) for ord_, repeat, reserved in await cursor.fetchall()}
        cursor = await conn.execute(_CHARGERS, [list({q.charger_id for q in queries})])
        charger_rows = await cursor.fetchall()
        cursor = await conn.execute(_TOKENS, [list(uids), TOKEN_CANDIDATES])
        token_rows = await cursor.fetchall()

    chargers: dict[int, tuple[Charger, frozenset[int]]] = {}
    for row in charger_rows:
        charger = Charger.from_db("default", _names(Charger), row[:_N_CHARGER])
        if charger.property_id:
            charger.property = Property.from_db(
                "default", _names(Property), row[_N_CHARGER : _N_CHARGER + _N_PROPERTY]
            )
        chargers[charger.pk] = (charger, frozenset(row[-1]))
    candidates: dict[str, list[tuple[Token, frozenset[int]]]] = {}
    for row in token_rows:
        token = Token.from_db("default", _names(Token), row[:_N_TOKEN])
        token.msp = (
            MobilityServiceProvider.from_db(
                "default", _names(MobilityServiceProvider), row[_N_TOKEN : _N_TOKEN + _N_MSP]
            )
            if token.msp_id
            else None
        )
        candidates.setdefault(token.uid_normalized, []).append((token, frozenset(row[-1])))

    read: dict[int, services.StartFacts] = {}
    for index, query in enumerate(queries):
        repeat, reserved = flags[index]
        if repeat or reserved or query.charger_id not in chargers:
            continue  # the ORM path decides (and raises for a charger that is gone)
        charger, group_ids = chargers[query.charger_id]
        facts: ChargerFacts = services.charger_facts(charger, group_ids)
        found = candidates.get(normalize_uid(query.id_tag), [])
        chosen = token_choose([t for t, _ in found], facts.organization_id)
        if chosen is not None and (chosen.reservation_id or chosen.single_session):
            continue  # a stay's allowance, a one-session card: the ORM path counts
        with_facts: tuple[Token, TokenFacts] | None = None
        if chosen is not None:
            with_facts = (
                chosen,
                token_facts(chosen, group_ids=next(g for t, g in found if t is chosen)),
            )
        read[index] = services.StartFacts(None, facts, str(charger.property_id or ""), with_facts)
    return await the_rest_one_by_one(read, queries, _prepare_orm)


_facts: Coalescer[FactsQuery, services.StartFacts] = Coalescer(
    "decision-facts", apply_async=on_pg_or_pool(_prepare_pg, _prepare_pool)
)


async def start_prepare(
    *,
    charger_id: int,
    connector_id: int,
    id_tag: str,
    meter_start: Decimal,
    started_at: datetime,
    clock_wrong: bool = False,
) -> services.StartFacts:
    """`services.start_prepare`, batched with the other starts and decisions waiting."""
    return await _facts.submit(
        FactsQuery(charger_id, connector_id, id_tag, (meter_start, started_at), clock_wrong)
    )


async def decision_inputs(
    *, charger_id: int, connector_id: int | None, id_tag: str
) -> tuple[ChargerFacts, str, tuple[Token, TokenFacts] | None]:
    """`services.decision_inputs`, batched with the other starts and decisions waiting."""
    facts = await _facts.submit(FactsQuery(charger_id, connector_id, id_tag))
    assert facts.charger is not None
    return facts.charger, facts.location_id, facts.token


def batches() -> int:
    """How many batches the reads took (tests)."""
    return _facts.batches
