"""The session rules, each stated once. Pure: no I/O, no Django.

Every session write has two ways to the database that sit side by side in one module: the ORM
path (SQLite, and PostgreSQL one message at a time) and the batched PostgreSQL path (many
chargers' messages in one statement, on the event loop's own connection):

- `opening.py`: a 1.6 StartTransaction opens a session (`open_orm`, `open_batched`);
- `closing.py`: a 1.6 StopTransaction closes it (`close_orm`, `close_batched`);
- `transactions.py`: a 2.0.1 TransactionEvent (`transaction_event_record` and
  `started_batched` for a Started, `transaction_events_append` and
  `transaction_events_append_batch` for the in-order Updated and Ended of a steady one), each
  reached through the one entry a 2.0.1 handler calls (`transaction_events.TransactionEvents`).

A batch takes only what its request alone decides (`*_in_batch` below say which items); the
rest, everything that needs the session's history (a resent message, a busy connector, an
unknown transaction, out of order or late offline events), goes through the ORM path one by
one, in arrival order, after the batch. Both paths build their rows with the functions here,
and tests/chargers/test_session_write_parity.py runs one table of cases through both.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from chargers.ocpp.tolerant import MeterReading

# ChargingSession.Status and the stop reason of a session a newer one replaced.
ACTIVE = "active"
COMPLETED = "completed"
SUPERSEDED = "Superseded"
# A 1.6 session whose connector went Available and no StopTransaction came (chargers.devices.stale).
NO_STOP_TRANSACTION = "NoStopTransaction"
# Stops we estimated, not the charger: its own StopTransaction, should it come, replaces them.
ESTIMATED_STOPS = (SUPERSEDED, NO_STOP_TRANSACTION)

ID_TAG_MAX = 36  # ChargingSession.id_tag, stop_id_tag
# A StartTransaction whose own time was replaced by its receive time (chargers.ocpp.clock) has
# no time to be known by when it is resent (our answer was lost): it is the running session of
# the same connector, card and meterStart opened this long before it at most.
CLOCK_WRONG_REPEAT_WINDOW = timedelta(minutes=15)
STOP_REASON_MAX = 20
ID_TAG_STATUS_MAX = 12


def first_in_batch(keys: Sequence[Sequence[Hashable]]) -> list[int]:
    """The items a batch may write: those none of whose keys an earlier item of the batch has.

    Two starts of one connector (or of one 2.0.1 transaction), two stops of one transaction:
    one after the other, the second sees what the first wrote (busy connector, resent start,
    resent stop), which only the one-by-one path after the batch can see. In one statement both
    would join the same row and PostgreSQL would pick either."""
    seen: set[Hashable] = set()
    chosen = []
    for index, item_keys in enumerate(keys):
        if not seen.intersection(item_keys):
            chosen.append(index)
        seen.update(item_keys)
    return chosen


# -- opening -------------------------------------------------------------------------------------


def opened_row(
    *,
    charger_id: int,
    connector_id: int,
    id_tag: str,
    id_tag_status: str | None,
    started_at: datetime,
    meter_start_wh: Decimal | None,
    transaction_id: int,
    reservation_id: int | None,
    ocpp_transaction_id: str = "",
    remote_start_id: int | None = None,
) -> dict[str, Any]:
    """The columns of a session a start opens (1.6 StartTransaction, 2.0.1 Started)."""
    return dict(
        charger_id=charger_id,
        connector_id=connector_id,
        id_tag=id_tag[:ID_TAG_MAX],
        id_tag_status=(id_tag_status or "Accepted")[:ID_TAG_STATUS_MAX],
        started_at=started_at,
        meter_start_wh=meter_start_wh,
        transaction_id=transaction_id,
        reservation_id=reservation_id,
        ocpp_transaction_id=ocpp_transaction_id,
        remote_start_id=remote_start_id,
    )


def superseded(
    mine: tuple[datetime, int], others: Sequence[tuple[datetime, int]]
) -> tuple[list[int], bool]:
    """A connector runs one transaction at a time: which of its other active sessions
    (started_at, pk) a start closes, and whether the start itself is closed because a newer one
    arrived first (queued messages, clock jumps). Started at the same moment (a stuck clock):
    the one that arrived first is the older one. Only the ORM path decides this: the batch
    leaves a start on a busy connector to it."""
    older = [index for index, other in enumerate(others) if other < mine]
    return older, any(other > mine for other in others)


# -- closing -------------------------------------------------------------------------------------


def stop_replaces(status: str, stop_reason: str) -> bool:
    """Whether a stop closes this session: a running one, or one we closed by estimate (a newer
    start superseded it, or its StopTransaction never came): the charger's own stop replaces
    the estimate. A resent stop of a closed one changes nothing."""
    return status == ACTIVE or stop_reason in ESTIMATED_STOPS


# `stop_replaces` as the batched UPDATE's condition on the session `s`.
STOP_REPLACES = "(s.status = %s OR s.stop_reason IN (%s, %s))"
STOP_REPLACES_PARAMS = (ACTIVE, *ESTIMATED_STOPS)


def stop_in_batch(meter_stop: Decimal | None) -> bool:
    """A stop without a usable meterStop ends at the session's last reading, which only the ORM
    path reads."""
    return meter_stop is not None


def stopped_row(
    *,
    meter_stop_wh: Decimal | None,
    stopped_at: datetime,
    reason: str,
    id_tag: str,
    transaction_data: list | None,
) -> dict[str, Any]:
    """The columns a 1.6 stop sets on its session (besides status and received_stop_at)."""
    return dict(
        meter_stop_wh=meter_stop_wh,
        stopped_at=stopped_at,
        stop_reason=(reason or "Local")[:STOP_REASON_MAX],
        stop_id_tag=id_tag[:ID_TAG_MAX],
        transaction_data=transaction_data or None,
    )


def meter_stop_floor(reading_wh: Decimal | None, meter_start_wh: Decimal | None) -> Decimal | None:
    """Where a session ends when its last register reading is `reading_wh`: never below its
    start; with no reading, its start (None when neither: its energy is unknown, not 0)."""
    if reading_wh is None or meter_start_wh is None:
        return meter_start_wh if reading_wh is None else reading_wh
    return max(Decimal(reading_wh), Decimal(meter_start_wh))


# -- a steady 2.0.1 transaction ------------------------------------------------------------------


class TxEvent(Protocol):
    """What the steady rule reads of a 2.0.1 event (v201_transactions.TxEvent, which imports
    this module: named here by its shape)."""

    @property
    def event_type(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def seq_no(self) -> int | None: ...
    @property
    def stopped_reason(self) -> str: ...
    @property
    def remote_start_id(self) -> int | None: ...
    @property
    def evse_id(self) -> int | None: ...
    @property
    def id_token(self) -> str: ...
    @property
    def reservation_id(self) -> int | None: ...
    @property
    def meter_values(self) -> Sequence[MeterReading]: ...


@dataclass
class SteadyFacts:
    """What is known of a 2.0.1 transaction whose next in-order events can only add readings
    (`steady_continues`): its session has its Started and an energy reading, and is active."""

    session_id: int
    connector_id: int
    transaction_id: int
    started_at: datetime
    remote_start_id: int | None
    seq_no: int  # the highest stored
    energy_at: datetime  # the last energy register reading stored
    # Some stored event carries a stoppedReason: an Ended without one is folded in full (the
    # reason is the latest given, v201_transactions.fold).
    reason_before: bool = True
    driver: str = ""  # the session's idToken (the first an event gave): an Ended by card keeps it


def steady_continues(
    event: TxEvent,
    *,
    connector_id: int,
    remote_start_id: int | None,
    started_at: datetime,
    energy_at: datetime | None,
) -> bool:
    """Whether `event`, numbered, leaves its session as its fold had it (start, EVSE, remote
    start, reservation fixed) and brings no reading older than the last energy reading stored
    (`energy_at`; None: the readings are not looked at yet). Both ways a steady transaction's
    event is written hold to it: the full path skips the refold of such an Updated
    (`transactions._steady_since`), and the socket appends such events in batches
    (`appendable`)."""
    return (
        event.seq_no is not None
        and event.evse_id in (None, connector_id)
        and event.remote_start_id in (None, remote_start_id)
        and event.reservation_id is None
        and event.timestamp >= started_at
        and (energy_at is None or all(r.timestamp >= energy_at for r in event.meter_values))
    )


def appendable(
    steady: SteadyFacts | None, event: TxEvent, end_register_wh: Callable[[TxEvent], Decimal | None]
) -> bool:
    """Whether `event` may be appended to the steady transaction `steady` without its refold:
    an Updated or Ended numbered after every stored one, naming no new driver, that
    `steady_continues`. An Ended ends the session as its fold would (closing.TxEnd) when it
    also carries the energy reading it ends at (`end_register_wh` of it, newer than any stored) and its
    own stoppedReason (or none was ever given: "Local"); it may name the card that stopped it
    when an earlier event named the driver (the fold keeps the first)."""
    if not (
        steady is not None
        and event.event_type in ("Updated", "Ended")
        and event.seq_no is not None
        and event.seq_no > steady.seq_no
        and (not event.id_token or (event.event_type == "Ended" and bool(steady.driver)))
        and steady_continues(
            event,
            connector_id=steady.connector_id,
            remote_start_id=steady.remote_start_id,
            started_at=steady.started_at,
            energy_at=steady.energy_at,
        )
    ):
        return False
    if event.event_type == "Ended":
        return end_register_wh(event) is not None and bool(
            event.stopped_reason or not steady.reason_before
        )
    return True
