"""What the OCPP 1.6 and 2.0.1 handlers share: the connection a handler sees, running a write
now or journaling it while the database is away, deciding on a card, and the payload as the
domain may store it. Both chargers.handlers.v16 and chargers.handlers.v201 build on this module; neither
reaches into the other."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from authorization.decisions import Context, Decision, TokenFacts
from authorization.models import Token
from authorization.services import decide_live, decision_record
from backoffice import db
from chargers.messagelog.log import DatabaseUnavailable
from chargers.ocpp import clock
from chargers.ocpp import quirks as q
from chargers.ocpp.protocol import parse_datetime
from chargers.ocpp.quirks import NONE as NO_QUIRKS
from chargers.ocpp.quirks import Quirks
from chargers.ocpp.storable import clean_texts
from chargers.plumbing.journal import TRANSIENT_RETRIES, is_outage, is_transient, journal
from chargers.sessions import starts
from chargers.state import quirks as quirks_state

logger = logging.getLogger(__name__)


@dataclass
class Connection:
    """What a handler knows about the charger on this socket."""

    charger_id: int
    station_id: str
    connection_id: str
    registration_status: str
    events: list = field(default_factory=list)  # (connector_id, event dict) to publish live
    # Set per CALL by the consumer / the handler:
    received_at: datetime | None = None
    # The frame's text holds nothing PostgreSQL cannot store (storable.may_need_cleaning), so
    # its payload needs no clean_value walk before it is written as JSON.
    received_clean: bool = False
    violation: str = ""  # schema violation accepted on a transaction message
    # (payload, its JSON) when a handler already wrote the received payload as JSON for a row of
    # its own (a 2.0.1 TransactionEvent's event row): the log row reuses the text instead of
    # dumping the same payload again. Only for the very object the consumer logs.
    dumped: tuple[Any, str] | None = None
    # Queues this CALL's Logs row now (set by the consumer for a frame whose answer waits for its
    # data): a handler calls it beside the data it writes, so one group commit holds both and the
    # answer waits for one commit, not two. Safe to call more than once.
    log_alongside: Callable[[], None] | None = None
    # The charger's known deviations (its quirk profiles, docs/quirks.md): resolved at connect
    # and at each boot, asked by the readers and command builders of this socket.
    quirks: Quirks = NO_QUIRKS

    def publish(self, connector_id: int, **event: Any) -> None:
        self.events.append((connector_id, event))


async def quirks_at_boot(conn: Connection, facts: dict) -> None:
    """A boot may name another model or firmware: the charger's deviations are resolved again
    (1.6 words: chargePointVendor, chargePointModel, firmwareVersion). While the database is
    away and the profiles are stale, the connection keeps what it had."""
    try:
        found = await quirks_state.quirks_for(
            str(facts.get("chargePointVendor") or "")[:50],
            str(facts.get("chargePointModel") or "")[:50],
            str(facts.get("firmwareVersion") or "")[:50],
            cached_only=journal.engaged,  # a journaled boot waits for no database
        )
    except Exception:  # noqa: BLE001 - an outage must not fail the boot's answer
        logger.warning("Quirk profiles not resolved for charger %s", conn.charger_id)
        return
    if found is not None:  # None: journaled and never read yet; the next boot resolves them
        conn.quirks = found


def deviations_met(
    conn: Connection, found: list[tuple[str, str]], action: str, payload: Any, unique_id: str
) -> None:
    """Record on the charger the deviations a reader met that its profiles do not name (in the
    background: the answer does not wait). Nothing to do, nothing done: the common case."""
    if found:
        quirks_state.observe(
            charger_id=conn.charger_id,
            found=found,
            example=quirks_state.example_frame(action, unique_id, payload),
            at=conn.received_at,
        )


def status_time(conn: Connection, payload: dict, unique_id: str, action: str) -> datetime | None:
    """A status message's own `timestamp` (None: it sent none), the receive time where it is no
    time the charger can have meant (chargers.ocpp.clock): said on its Logs row and recorded
    on the charger, as the transaction readers do."""
    value = payload.get("timestamp")
    if not isinstance(value, str) or not value:
        return None
    received = conn.received_at or timezone.now()
    try:
        when, problem = clock.checked(parse_datetime(value), received)
    except (ValueError, OverflowError):
        return None
    if problem:
        conn.violation = f"timestamp {value[:40]!r} {problem}: receive time used"
        found: list[tuple[str, str]] = []
        q.met(found, conn.quirks, q.CLOCK_WRONG, f"{value[:40]!r} {problem}")
        deviations_met(conn, found, action, payload, unique_id)
    return when


# A CALL handler: the connection, the payload, the message's unique id; the reply payload.
Handler = Callable[[Connection, dict, str], Awaitable[dict]]


async def journal_call(
    conn: Connection, action: str, payload: dict, unique_id: str, **extra: Any
) -> None:
    await journal.append(
        [
            {
                "kind": "call",
                "action": action,
                "charger_id": conn.charger_id,
                "payload": payload,
                "unique_id": unique_id,
                "received_at": conn.received_at or timezone.now(),
                **extra,
            }
        ]
    )


async def durably(
    conn: Connection,
    action: str,
    payload: dict,
    unique_id: str,
    now: Callable[[], Awaitable[Any]],
    **extra: Any,
) -> Any:
    """Run `now()` against the database; if it is unreachable (or a journal is being replayed,
    to keep order), journal the message instead. Returns now()'s result, or None if journaled."""
    attempt = 0
    while not journal.engaged:
        try:
            return await now()
        except DatabaseUnavailable as exc:
            journal.engage(exc)
            break
        except Exception as exc:
            if is_transient(exc) and attempt < TRANSIENT_RETRIES:
                attempt += 1  # a deadlock rolled it all back: the database is there, run it again
                continue
            if not is_outage(exc):
                raise
            journal.engage(exc)
            break
    await journal_call(conn, action, payload, unique_id, **extra)
    return None


async def decide(
    conn: Connection,
    id_tag: str,
    context: Context,
    connector_id: int | None,
    unique_id: str,
    *,
    contract: bool = False,
) -> tuple[Decision, tuple[Token, TokenFacts] | None]:
    """Decide on a card at this charger and record the decision; return it with the card found
    (2.0.1 answers the card's group and opens the session with it). Two trips to the database
    pool: the facts, then the record (the card's MSP, if it must be asked, in between)."""
    decision, record, token = await decide_unrecorded(
        conn, id_tag, context, connector_id, unique_id, contract=contract
    )
    await db.run(decision_record, **record)
    return decision, token


async def decide_unrecorded(
    conn: Connection,
    id_tag: str,
    context: Context,
    connector_id: int | None,
    unique_id: str,
    *,
    contract: bool = False,
) -> tuple[Decision, dict, tuple[Token, TokenFacts] | None]:
    """`decide` without recording: the decision, its record (`decision_record`'s arguments, for
    the caller to store with what it opens) and the card found. `contract`: `id_tag` is a Plug &
    Charge eMAID (a foreign one is asked live of its provider)."""
    facts, location_id, token = await starts.decision_inputs(
        charger_id=conn.charger_id,
        connector_id=connector_id,
        id_tag=id_tag,
    )
    decision, record, token = await decide_live(
        uid=id_tag,
        charger=facts,
        context=context,
        token=token,
        location_id=location_id,
        connector_id=connector_id,
        ocpp_unique_id=unique_id,
        contract=contract,
    )
    return decision, record, token


def storable_payload(conn: Connection, payload: dict) -> dict:
    """The payload as the domain may store and look it up: a frame holding text PostgreSQL
    refuses (NUL, lone surrogates) has it escaped once here, after validation, so no handler,
    card lookup or report store meets it. The log keeps the frame as sent (message_log)."""
    return payload if conn.received_clean else clean_texts(payload)
