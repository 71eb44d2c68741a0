"""Every session write has an ORM path and a batched PostgreSQL path (chargers.sessions.rules).
One table of cases, each rule of issue 36 item 2, runs through both on PostgreSQL: the same
history, then the same messages one by one through the ORM path, or together through the batch
(which leaves what it cannot take to the ORM path). The rows they leave (sessions, readings,
2.0.1 events, orphan stops, recorded decisions, the signed meter readings metering reads from
them), what each message was answered with and the sessions announced must be the same, and
the batch must write every message itself but those it leaves to the ORM path on purpose
(`LEFT_TO_ORM`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, models, transaction
from django.utils import timezone

from authorization.decisions import Context, Decision, Status
from authorization.models import AuthorizationDecision
from chargers.devices import stale
from chargers.messagelog import meter_values
from chargers.models import ChargingSession, MeterValue, OrphanStop, TransactionEvent
from chargers.ocpp.tolerant import MeterReading, Sample
from chargers.sessions import closing, opening
from chargers.sessions import transactions as v201
from metering.models import MeterKey, SignedReading
from metering.services import session_signed_ingest
from tests.factories import ChargerFactory, TokenFactory
from tests.metering.signing import Meter, signed_data_16, signed_meter_value_201

from .v201.conftest import tx_event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the batched paths are PostgreSQL's"
    ),
]

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def at(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


# Signed once (ECDSA signatures are randomized): both paths meet the same texts.
METER = Meter()
SIGNED_START = METER.ocmf("B", "0.100", T0, pagination=1)
SIGNED_END = METER.ocmf("E", "0.500", T0 + timedelta(minutes=30), pagination=2)


def signed_16(text: str, context: str) -> dict:
    return {"value": signed_data_16(METER, text), "format": "SignedData", "context": context}


def signed_201(payload: dict, text: str, wh: float, context: str) -> dict:
    """The TransactionEvent with a signed register reading (signedMeterValue, OCA note 4.1)."""
    payload["meterValue"] = [
        {
            "timestamp": payload["timestamp"],
            "sampledValue": [
                {
                    "value": wh,
                    "context": context,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                    "signedMeterValue": signed_meter_value_201(METER, text),
                }
            ],
        }
    ]
    return payload


@dataclass
class World:
    chargers: list
    token: Any

    def decision(self, charger, connector_id: int | None, uid: str = "CARD-1") -> dict:
        return dict(
            decision=Decision(Status.ACCEPTED, "accepted", 9, "Accepted: a test card."),
            uid=uid,
            token_id=self.token.pk,
            organization_id=charger.property.organization_id,
            station_id=charger.station_id,
            connector_id=connector_id,
            context=Context.START_TRANSACTION,
            ocpp_unique_id=f"u-{uid}-{connector_id}",
        )

    # -- 1.6 -------------------------------------------------------------------------------------

    def start(self, n: int, connector: int, *, minute: int = 0, meter: int = 100, tx: int = 0):
        charger = self.chargers[n]
        return opening.OpenRequest(
            charger_id=charger.pk,
            connector_id=connector,
            id_tag="CARD-1",
            meter_start=Decimal(meter),
            started_at=T0 + timedelta(minutes=minute),
            transaction_id=tx or 700_000 + 100 * n + 10 * connector + minute,
            token=self.token,
            decision_record=self.decision(charger, connector),
        )

    def stop(
        self,
        n: int,
        tx: int,
        meter: int | None,
        *,
        reason: str = "Local",
        wh: str = "450",
        signed: bool = False,
    ):
        data: list = [{"sampledValue": [{"value": wh}]}]
        if signed:  # both signed readings in the StopTransaction (OCA note 3.1.4)
            data = [
                {
                    "timestamp": at(30),
                    "sampledValue": [
                        signed_16(SIGNED_START, "Transaction.Begin"),
                        signed_16(SIGNED_END, "Transaction.End"),
                    ],
                }
            ]
        return closing.StopRequest(
            charger_id=self.chargers[n].pk,
            transaction_id=tx,
            meter_stop=Decimal(meter) if meter is not None else None,
            stopped_at=T0 + timedelta(minutes=30),
            reason=reason,
            id_tag="CARD-1",
            transaction_data=data,
            payload={"transactionId": tx},
            readings=[MeterReading(T0 + timedelta(minutes=29), [Sample(wh, unit="Wh")])],
        )

    def reading(self, n: int, tx: int, wh: str, minute: int) -> None:
        """A MeterValues register reading of the session (stored as the live path stores it)."""
        v201_session = ChargingSession.objects.get(transaction_id=tx)
        meter_values.store_orm(
            meter_values.rows_of(
                self.chargers[n].pk,
                v201_session.connector_id,
                v201_session.pk,
                [MeterReading(T0 + timedelta(minutes=minute), [Sample(wh, unit="Wh")])],
            )
        )

    # -- 2.0.1 -----------------------------------------------------------------------------------

    def started(self, n: int, payload: dict, tx: int) -> v201.StartedRequest:
        charger = self.chargers[n]
        card = payload.get("idToken")
        return v201.StartedRequest(
            charger_id=charger.pk,
            event=v201.read_transaction_event(payload, RECEIVED),
            payload=payload,
            storable=payload,
            received_at=RECEIVED,
            transaction_id=tx,
            id_tag_status="Accepted" if card else None,
            token_id=self.token.pk if card else None,
            decision_record=self.decision(
                charger, payload.get("evse", {}).get("id"), card["idToken"]
            )
            if card
            else None,
        )

    def record(self, n: int, payload: dict, tx: int | None = None) -> None:
        """A TransactionEvent through the full path (a history the batch then meets)."""
        v201.transaction_event_record(
            charger_id=self.chargers[n].pk,
            payload=payload,
            received_at=RECEIVED,
            transaction_id=tx,
            id_tag_status="Accepted",
        )

    def append(self, n: int, tx_id: str, payload: dict, end: closing.TxEnd | None = None):
        session = ChargingSession.objects.get(ocpp_transaction_id=tx_id)
        return v201.TxAppend(
            charger_id=self.chargers[n].pk,
            session_id=session.pk,
            connector_id=session.connector_id,
            event=v201.read_transaction_event(payload, RECEIVED),
            payload=payload,
            received_at=RECEIVED,
            end=end,
        )

    def ended(self, n: int, tx_id: str, payload: dict):
        """An appended Ended, its end as the connection builds it (closing.tx_end_of)."""
        event = v201.read_transaction_event(payload, RECEIVED)
        return self.append(n, tx_id, payload, closing.tx_end_of(event))

    def stop_lost(self, transaction_id: int) -> None:
        """What the 1.6 sweep does when the connector went Available and no stop came."""
        session = ChargingSession.objects.get(transaction_id=transaction_id)
        assert stale.close_without_stop(session.pk)

    def closed_at_last_reading(self, tx_id: str, reason: str) -> None:
        """What the stale-transaction check does when the charger says the transaction is over."""
        with transaction.atomic():
            session = ChargingSession.objects.select_for_update().get(ocpp_transaction_id=tx_id)
            closing.close_at_last_reading(session, reason)


@dataclass(frozen=True)
class Case:
    kind: str  # open | close | started | append
    history: Callable[[World], None]  # written beforehand, through the ORM path
    messages: Callable[[World], list]  # the requests, one batch


def _nothing(world: World) -> None:
    pass


def _open(world: World, *starts) -> None:
    for start in starts:
        opening.open_orm(start)


def _end(minute: int, wh: int, reason: str = "Local") -> closing.TxEnd:
    return closing.TxEnd(T0 + timedelta(minutes=minute), Decimal(wh), reason)


CASES = {
    # -- 1.6 StartTransaction ----------------------------------------------------------------------
    "first start": Case(
        "open", _nothing, lambda w: [w.start(0, 1), w.start(0, 2), w.start(1, 1, meter=7)]
    ),
    "resent start": Case(
        "open",
        lambda w: _open(w, w.start(0, 1)),
        # The same facts again (its answer was lost), with the id the handler drew this time.
        lambda w: [w.start(0, 1, tx=799_001), w.start(1, 1)],
    ),
    "busy connector, superseded": Case(
        "open",
        lambda w: (_open(w, w.start(0, 1)), w.reading(0, 700_010, "260", 20)),
        lambda w: [w.start(0, 1, minute=40, meter=300), w.start(1, 1)],
    ),
    "a newer start arrived first": Case(
        "open",
        lambda w: _open(w, w.start(0, 1, minute=40)),
        lambda w: [w.start(0, 1, minute=5)],
    ),
    "two starts of one connector in a batch": Case(
        "open", _nothing, lambda w: [w.start(0, 1), w.start(0, 1, minute=5), w.start(0, 2)]
    ),
    # -- 1.6 StopTransaction -----------------------------------------------------------------------
    "stop": Case(
        "close",
        lambda w: _open(w, w.start(0, 1), w.start(1, 1)),
        lambda w: [w.stop(0, 700_010, 500), w.stop(1, 700_110, 600, reason="EVDisconnected")],
    ),
    "resent stop": Case(
        "close",
        lambda w: (
            _open(w, w.start(0, 1)),
            closing.close_orm(w.stop(0, 700_010, 500)),
        ),
        lambda w: [w.stop(0, 700_010, 999, reason="Remote", wh="990")],
    ),
    "unknown transaction": Case(
        "close",
        lambda w: _open(w, w.start(0, 1)),
        lambda w: [w.stop(0, 123_456, 500), w.stop(0, 700_010, 510)],
    ),
    "two stops in one batch": Case(
        "close",
        lambda w: _open(w, w.start(0, 1), w.start(0, 2)),
        lambda w: [
            w.stop(0, 700_010, 700, reason="Remote", wh="650"),
            w.stop(0, 700_010, 999, reason="PowerLoss", wh="990"),
            w.stop(0, 700_020, 800),
        ],
    ),
    "a stop without meterStop, then one with": Case(
        "close",
        lambda w: (_open(w, w.start(0, 1)), w.reading(0, 700_010, "420", 25)),
        lambda w: [w.stop(0, 700_010, None), w.stop(0, 700_010, 999, wh="990")],
    ),
    "the charger's stop replaces our superseded estimate": Case(
        "close",
        lambda w: _open(w, w.start(0, 1), w.start(0, 1, minute=40)),
        lambda w: [w.stop(0, 700_010, 250, reason="PowerLoss"), w.stop(0, 700_050, 100)],
    ),
    "the charger's stop replaces our no-stop estimate": Case(
        "close",
        lambda w: (
            _open(w, w.start(0, 1)),
            w.reading(0, 700_010, "260", 20),
            w.stop_lost(700_010),
        ),
        lambda w: [w.stop(0, 700_010, 300, reason="EVDisconnected")],
    ),
    "a stop with no reason": Case(
        "close",
        lambda w: _open(w, w.start(0, 1)),
        lambda w: [w.stop(0, 700_010, 500, reason="")],
    ),
    "signed stop": Case(
        "close",
        lambda w: _open(w, w.start(0, 1), w.start(1, 1)),
        lambda w: [w.stop(0, 700_010, 500, signed=True), w.stop(1, 700_110, 600)],
    ),
    # -- 2.0.1 TransactionEvent Started ----------------------------------------------------------
    "2.0.1 signed Started": Case(
        "started",
        _nothing,
        lambda w: [
            w.started(
                0,
                signed_201(
                    tx_event("Started", 0, "TX-A", timestamp=at(0)),
                    SIGNED_START,
                    100,
                    "Transaction.Begin",
                ),
                810_001,
            ),
            w.started(1, tx_event("Started", 0, "TX-C", timestamp=at(2), wh=7), 810_003),
        ],
    ),
    "2.0.1 Started": Case(
        "started",
        _nothing,
        lambda w: [
            w.started(
                0,
                tx_event("Started", 0, "TX-A", timestamp=at(0), id_token="CARD-1", wh=1000.5),
                810_001,
            ),
            w.started(0, tx_event("Started", 0, "TX-B", timestamp=at(1), evse=2), 810_002),
            w.started(
                1, tx_event("Started", 0, "TX-C", timestamp=at(2), wh=7, remoteStartId=5), 810_003
            ),
        ],
    ),
    "2.0.1 Started resent": Case(
        "started",
        lambda w: w.record(
            0, tx_event("Started", 0, "TX-A", timestamp=at(0), id_token="CARD-1", wh=1000), 810_001
        ),
        lambda w: [
            w.started(
                0,
                tx_event("Started", 0, "TX-A", timestamp=at(0), id_token="CARD-1", wh=1000),
                810_009,
            ),
            w.started(1, tx_event("Started", 0, "TX-C", timestamp=at(2)), 810_003),
        ],
    ),
    "2.0.1 Started on a busy connector": Case(
        "started",
        lambda w: w.record(0, tx_event("Started", 0, "TX-OLD", timestamp=at(0), wh=500), 810_001),
        lambda w: [
            w.started(0, tx_event("Started", 0, "TX-NEW", timestamp=at(30), wh=900), 810_002)
        ],
    ),
    "2.0.1 two Started of one connector in a batch": Case(
        "started",
        _nothing,
        lambda w: [
            w.started(0, tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1), 810_001),
            w.started(0, tx_event("Started", 0, "TX-B", timestamp=at(5), wh=2), 810_002),
        ],
    ),
    "2.0.1 out of order: an Updated before its Started": Case(
        "started",
        lambda w: w.record(0, tx_event("Updated", 1, "TX-A", timestamp=at(5), wh=1500), 810_001),
        lambda w: [
            w.started(
                0,
                tx_event("Started", 0, "TX-A", timestamp=at(0), id_token="CARD-1", wh=1000),
                810_009,
            )
        ],
    ),
    "2.0.1 late offline Started after its Ended": Case(
        "started",
        lambda w: (
            w.record(
                0, tx_event("Updated", 1, "TX-A", timestamp=at(5), wh=1500, offline=True), 810_001
            ),
            w.record(
                0,
                tx_event(
                    "Ended", 2, "TX-A", timestamp=at(9), wh=1900, stopped_reason="EVDisconnected"
                ),
            ),
        ),
        lambda w: [
            w.started(
                0, tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1000, offline=True), 810_009
            )
        ],
    ),
    # -- 2.0.1 TransactionEvent Updated and Ended of a steady transaction ------------------------
    "2.0.1 Updated and Ended": Case(
        "append",
        lambda w: (
            w.record(0, tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1000), 810_001),
            w.record(1, tx_event("Started", 0, "TX-B", timestamp=at(0), wh=2000), 810_002),
        ),
        lambda w: [
            w.append(0, "TX-A", tx_event("Updated", 1, "TX-A", timestamp=at(5), wh=1500.25)),
            w.append(
                0, "TX-A", tx_event("Ended", 2, "TX-A", timestamp=at(9), wh=1900), _end(9, 1900)
            ),
            w.append(
                1,
                "TX-B",
                tx_event("Ended", 1, "TX-B", timestamp=at(9), wh=1800),
                _end(9, 1800, "Remote"),
            ),
        ],
    ),
    "2.0.1 signed Ended": Case(
        "append",
        lambda w: w.record(
            0,
            signed_201(
                tx_event("Started", 0, "TX-A", timestamp=at(0)),
                SIGNED_START,
                100,
                "Transaction.Begin",
            ),
            810_001,
        ),
        lambda w: [
            w.append(
                0,
                "TX-A",
                signed_201(
                    tx_event("Ended", 1, "TX-A", timestamp=at(30)),
                    SIGNED_END,
                    500,
                    "Transaction.End",
                ),
                _end(30, 500),
            )
        ],
    ),
    "2.0.1 Ended by a card, for the charger's reason": Case(
        "append",
        # Appendable (rules.appendable): the Started named the driver, the Ended the stopper.
        lambda w: w.record(
            0, tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1000, id_token="CARD-1"), 810_001
        ),
        lambda w: [
            w.ended(
                0,
                "TX-A",
                tx_event(
                    "Ended",
                    1,
                    "TX-A",
                    timestamp=at(20),
                    wh=1500,
                    id_token="CARD-2",
                    stopped_reason="EVDisconnected",
                ),
            )
        ],
    ),
    "2.0.1 an Ended after we closed it at its last reading": Case(
        "append",
        lambda w: (
            w.record(0, tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1000), 810_001),
            w.record(0, tx_event("Updated", 1, "TX-A", timestamp=at(10), wh=1400)),
            w.closed_at_last_reading("TX-A", stale.NO_ENDED_EVENT),
        ),
        # Not appended on either path (its session is not active): the full path refolds it.
        lambda w: [w.ended(0, "TX-A", tx_event("Ended", 2, "TX-A", timestamp=at(20), wh=1500))],
    ),
    "2.0.1 an event after its Ended in one batch": Case(
        "append",
        lambda w: w.record(0, tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1000), 810_001),
        lambda w: [
            w.append(
                0, "TX-A", tx_event("Ended", 1, "TX-A", timestamp=at(9), wh=1900), _end(9, 1900)
            ),
            w.append(0, "TX-A", tx_event("Updated", 2, "TX-A", timestamp=at(10), wh=2000)),
        ],
    ),
    "2.0.1 late offline event of an ended session": Case(
        "append",
        lambda w: (
            w.record(0, tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1000), 810_001),
            w.record(0, tx_event("Ended", 2, "TX-A", timestamp=at(9), wh=1900)),
        ),
        lambda w: [
            w.append(
                0, "TX-A", tx_event("Updated", 1, "TX-A", timestamp=at(5), wh=1500, offline=True)
            )
        ],
    ),
}


A, C, S = "active", "completed", "Superseded"
# Per case, what the ORM path leaves: each message's answer (our transaction id, None for an
# orphan stop; for a 2.0.1 event whether it was a duplicate, opened or ended its session; for an
# append whether it was written), the sessions (transaction id, status, meter start and stop,
# stop reason), and how many readings, orphan stops and recorded decisions.
EXPECTED: dict[str, tuple] = {
    "first start": (
        [700010, 700020, 700110],
        [(700010, A, 100, None, ""), (700020, A, 100, None, ""), (700110, A, 7, None, "")],
        0,
        0,
        3,
    ),
    "resent start": (
        [700010, 700110],
        [(700010, A, 100, None, ""), (700110, A, 100, None, "")],
        0,
        0,
        2,
    ),
    "busy connector, superseded": (
        [700050, 700110],
        [(700010, C, 100, 260, S), (700050, A, 300, None, ""), (700110, A, 100, None, "")],
        1,
        0,
        3,
    ),
    "a newer start arrived first": (
        [700015],
        [(700015, C, 100, 100, S), (700050, A, 100, None, "")],
        0,
        0,
        2,
    ),
    "two starts of one connector in a batch": (
        [700010, 700015, 700020],
        [(700010, C, 100, 100, S), (700015, A, 100, None, ""), (700020, A, 100, None, "")],
        0,
        0,
        3,
    ),
    "stop": (
        [700010, 700110],
        [(700010, C, 100, 500, "Local"), (700110, C, 100, 600, "EVDisconnected")],
        2,
        0,
        2,
    ),
    "resent stop": ([700010], [(700010, C, 100, 500, "Local")], 1, 0, 1),
    "unknown transaction": ([None, 700010], [(700010, C, 100, 510, "Local")], 1, 1, 1),
    "two stops in one batch": (
        [700010, 700010, 700020],
        [(700010, C, 100, 700, "Remote"), (700020, C, 100, 800, "Local")],
        2,
        0,
        2,
    ),
    "a stop without meterStop, then one with": (
        [700010, 700010],
        [(700010, C, 100, 420, "Local")],
        2,
        0,
        1,
    ),
    "the charger's stop replaces our superseded estimate": (
        [700010, 700050],
        [(700010, C, 100, 250, "PowerLoss"), (700050, C, 100, 100, "Local")],
        2,
        0,
        2,
    ),
    "the charger's stop replaces our no-stop estimate": (
        [700010],
        [(700010, C, 100, 300, "EVDisconnected")],
        2,
        0,
        1,
    ),
    "a stop with no reason": ([700010], [(700010, C, 100, 500, "Local")], 1, 0, 1),
    "signed stop": (
        [700010, 700110],
        [(700010, C, 100, 500, "Local"), (700110, C, 100, 600, "Local")],
        2,
        0,
        2,
    ),
    "2.0.1 signed Started": (
        [(810001, False, True, False), (810003, False, True, False)],
        [(810001, A, 100, None, ""), (810003, A, 7, None, "")],
        2,
        0,
        0,
    ),
    "2.0.1 signed Ended": (
        [True],
        [(810001, C, 100, 500, "Local")],
        2,
        0,
        0,
    ),
    "2.0.1 Started": (
        [(810001, False, True, False), (810002, False, True, False), (810003, False, True, False)],
        [
            (810001, A, Decimal("1000.5"), None, ""),
            (810002, A, None, None, ""),
            (810003, A, 7, None, ""),
        ],
        2,
        0,
        1,
    ),
    "2.0.1 Started resent": (
        [(810001, True, False, False), (810003, False, True, False)],
        [(810001, A, 1000, None, ""), (810003, A, None, None, "")],
        1,
        0,
        1,
    ),
    "2.0.1 Started on a busy connector": (
        [(810002, False, True, False)],
        [(810001, C, 500, 500, S), (810002, A, 900, None, "")],
        2,
        0,
        0,
    ),
    "2.0.1 two Started of one connector in a batch": (
        [(810001, False, True, False), (810002, False, True, False)],
        [(810001, C, 1, 1, S), (810002, A, 2, None, "")],
        2,
        0,
        0,
    ),
    "2.0.1 out of order: an Updated before its Started": (
        [(810001, False, False, False)],
        [(810001, A, 1000, None, "")],
        2,
        0,
        1,
    ),
    "2.0.1 late offline Started after its Ended": (
        [(810001, False, False, False)],
        [(810001, C, 1000, 1900, "EVDisconnected")],
        3,
        0,
        0,
    ),
    "2.0.1 Updated and Ended": (
        [True, True, True],
        # An Ended register below the meter start ends at the start.
        [(810001, C, 1000, 1900, "Local"), (810002, C, 2000, 2000, "Remote")],
        5,
        0,
        0,
    ),
    "2.0.1 Ended by a card, for the charger's reason": (
        [True],
        [(810001, C, 1000, 1500, "EVDisconnected")],
        2,
        0,
        0,
    ),
    "2.0.1 an Ended after we closed it at its last reading": (
        [False],
        [(810001, C, 1000, 1400, "NoEndedEvent")],
        2,
        0,
        0,
    ),
    "2.0.1 an event after its Ended in one batch": (
        [True, False],
        [(810001, C, 1000, 1900, "Local")],
        2,
        0,
        0,
    ),
    "2.0.1 late offline event of an ended session": (
        [False],
        [(810001, C, 1000, 1900, "Local")],
        2,
        0,
        0,
    ),
}


def _summary(answers: list, rows: dict) -> tuple:
    return (
        [a[:4] if isinstance(a, tuple) else a for a in answers],
        [
            (
                s["transaction_id"],
                s["status"],
                s["meter_start_wh"],
                s["meter_stop_wh"],
                s["stop_reason"],
            )
            for s in sorted(rows["sessions"], key=lambda s: s["transaction_id"])
        ],
        len(rows["readings"]),
        len(rows["orphans"]),
        len(rows["decisions"]),
    )


def _orm(kind: str, messages: list) -> list:
    if kind == "open":
        return [opening.open_orm(m) for m in messages]
    if kind == "close":
        return [closing.close_orm(m) for m in messages]
    if kind == "started":
        return [v201.started_orm(m) for m in messages]
    return v201.transaction_events_append(messages)


async def _batched(kind: str, messages: list) -> list:
    if kind == "open":
        return await opening.open_batched(messages)
    if kind == "close":
        return await closing.close_batched(messages)
    if kind == "started":
        return await v201.started_batched(messages)
    return await v201.transaction_events_append_batch(messages)


def _answer(result: Any) -> Any:
    """What the charger's answer and the live updates are made of, per message."""
    if isinstance(result, ChargingSession):
        return result.transaction_id
    if isinstance(result, v201.TransactionEventOutcome):
        return (
            result.session.transaction_id,
            result.duplicate,
            result.started,
            result.ended,
            result.steady_since,
        )
    return result  # None (an orphan stop), or whether an append was written


def _values(model: type[models.Model], *, skip: tuple[str, ...] = ()) -> list[dict]:
    """The rows of `model` without what differs by nature (ids, our clocks), the session as
    its transaction id."""
    tx_of = dict(ChargingSession.objects.values_list("pk", "transaction_id"))
    rows = []
    for values in model.objects.values():
        values.pop("id")
        for name in skip:
            values.pop(name)
        if "session_id" in values:
            values["session_id"] = tx_of.get(values["session_id"])
        rows.append(values)
    return sorted(rows, key=repr)


def _rows(started: list[int], finished: list[int]) -> dict:
    tx_of = dict(ChargingSession.objects.values_list("pk", "transaction_id"))
    sessions = _values(ChargingSession, skip=("received_start_at", "received_stop_at"))
    stopped = dict(ChargingSession.objects.values_list("transaction_id", "received_stop_at"))
    for row in sessions:
        row["received_stop"] = stopped[row["transaction_id"]] is not None
    for session_id in tx_of:  # what metering reads from what the path stored
        session_signed_ingest(session_id=session_id)
    return {
        "signed": _values(SignedReading, skip=("verified_at",)),
        "sessions": sessions,
        "readings": _values(MeterValue),
        "events": _values(TransactionEvent),
        "orphans": _values(OrphanStop, skip=("received_at",)),
        "decisions": _values(AuthorizationDecision, skip=("created_at",)),
        "announced started": sorted(tx_of[pk] for pk in started),
        "announced finished": sorted(tx_of[pk] for pk in finished),
    }


def _clear() -> None:
    for model in (MeterValue, TransactionEvent, OrphanStop, AuthorizationDecision):
        model.objects.all().delete()
    ChargingSession.objects.all().delete()


@pytest.fixture
async def hash_joins():
    """The stop batch's UPDATE planned as a hash join: with two stops of one transaction in its
    statement, PostgreSQL would then use the last (with a nested loop, the first, as the ORM)."""
    async with closing._pg.use() as conn:
        await conn.execute("SET enable_nestloop = off")
        await conn.execute("SET enable_mergejoin = off")
    yield
    closing._pg.close()


# How many of a case's messages the batch leaves to the ORM path (`the_rest_one_by_one`), on
# purpose: what its statement cannot decide (a busy connector, a second message of one key in
# the batch, a stop without meterStop, one that matches no session it may close). Every other
# message must be written by the batch statement itself: the parity of the rows alone would not
# show a batch that leaves a case it should take to the ORM path, which then writes it right.
LEFT_TO_ORM = {
    "resent start": 1,
    "busy connector, superseded": 1,
    "a newer start arrived first": 1,
    "two starts of one connector in a batch": 1,
    "resent stop": 1,
    "unknown transaction": 1,
    "two stops in one batch": 1,
    "a stop without meterStop, then one with": 2,
    "2.0.1 Started resent": 1,
    "2.0.1 Started on a busy connector": 1,
    "2.0.1 two Started of one connector in a batch": 1,
    # A Started whose transaction already has events takes the fold of them all.
    "2.0.1 out of order: an Updated before its Started": 1,
    "2.0.1 late offline Started after its Ended": 1,
}


@pytest.fixture
def left_to_orm(monkeypatch) -> list[int]:
    """The number of messages each batch left to the ORM path, as it hands them over."""
    left: list[int] = []
    for module in (opening, closing, v201):
        original = module.the_rest_one_by_one

        async def counting(done, items, one, original=original):
            left.append(len(items) - len(done))
            return await original(done, items, one)

        monkeypatch.setattr(module, "the_rest_one_by_one", counting)
    return left


@pytest.mark.parametrize("name", list(CASES))
async def test_both_paths_of_a_session_write_leave_the_same_rows(
    name, hash_joins, announced_started, announced_finished, left_to_orm
):
    case = CASES[name]
    world = await sync_to_async(
        lambda: World([ChargerFactory(), ChargerFactory()], TokenFactory(uid="CARD-1"))
    )()
    for charger in world.chargers:
        await MeterKey.objects.acreate(  # registered and confirmed by a person
            charger=charger,
            meter_serial=METER.serial,
            public_key=METER.public_key_der,
            confirmed_at=timezone.now(),
        )

    async def run(path: str) -> tuple[list, dict]:
        await sync_to_async(case.history)(world)
        messages = await sync_to_async(case.messages)(world)
        announced_started.clear()
        announced_finished.clear()
        if path == "orm":
            results = await sync_to_async(_orm)(case.kind, messages)
        else:
            results = await _batched(case.kind, messages)
        answers = [_answer(r) for r in results]
        rows = await sync_to_async(_rows)(announced_started, announced_finished)
        await sync_to_async(_clear)()
        return answers, rows

    orm_answers, orm_rows = await run("orm")
    # The ORM path states each rule: it ends as the table says.
    assert _summary(orm_answers, orm_rows) == EXPECTED[name]
    batched_answers, batched_rows = await run("batched")
    assert batched_answers == orm_answers
    assert sum(left_to_orm) == LEFT_TO_ORM.get(name, 0), "messages the batch left to the ORM path"
    for table in orm_rows:
        assert batched_rows[table] == orm_rows[table], table
    assert orm_rows["sessions"], "every case writes a session"
    if "signed" in name:  # the signed values reached metering, verified, on both paths
        assert orm_rows["signed"] and {r["status"] for r in orm_rows["signed"]} == {"verified"}


# An Ended closes its session through the full path (the fold of all its events,
# closing.close_by_fold) or, in order on a steady transaction, appended (closing.close_ended_orm
# and close_ended_copy, its end from closing.tx_end_of): every close reason, the same session.
ENDED = {
    "no stoppedReason (Local)": tx_event("Ended", 1, "TX-A", timestamp=at(20), wh=1500),
    "the charger's reason, by a card": tx_event(
        "Ended",
        1,
        "TX-A",
        timestamp=at(20),
        wh=1500.5,
        id_token="CARD-2",
        stopped_reason="EVDisconnected",
    ),
    "a register below the start": tx_event(
        "Ended", 1, "TX-A", timestamp=at(20), wh=900, stopped_reason="Remote"
    ),
    "a Transaction.End reading": tx_event(
        "Ended",
        1,
        "TX-A",
        timestamp=at(25),
        wh=1700,
        context="Transaction.End",
        stopped_reason="PowerLoss",
    ),
}


@pytest.mark.parametrize("name", list(ENDED))
async def test_an_ended_closes_alike_through_the_fold_and_appended(
    name, announced_started, announced_finished
):
    world = await sync_to_async(lambda: World([ChargerFactory()], TokenFactory(uid="CARD-1")))()
    payload = ENDED[name]

    async def run(path: str) -> tuple[list[dict], list[int]]:
        # The Started names the driver, so an Ended naming its stopper is appendable.
        started = tx_event("Started", 0, "TX-A", timestamp=at(0), wh=1000, id_token="CARD-1")
        await sync_to_async(world.record)(0, started, 810_001)
        announced_finished.clear()
        if path == "fold":
            await sync_to_async(world.record)(0, payload)
        else:
            item = await sync_to_async(world.ended)(0, "TX-A", payload)
            if path == "orm":
                written = await sync_to_async(v201.transaction_events_append)([item])
            else:
                written = await v201.transaction_events_append_batch([item])
            assert written == [True]
        rows = await sync_to_async(_rows)([], announced_finished)
        await sync_to_async(_clear)()
        return rows["sessions"], rows["announced finished"]

    fold = await run("fold")
    assert fold[0][0]["status"] == C and fold[1] == [810001]
    assert await run("orm") == fold
    assert await run("batch") == fold
