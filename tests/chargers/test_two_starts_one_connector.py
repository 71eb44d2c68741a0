"""Two different starts on one connector at once: two sockets of one charger (a reconnect while
the first socket's frames are still being written), or a journal replayed beside live frames.
A connector runs one session at a time, so whichever start is newer runs and the older is
closed as superseded, however the two meet: one by one through the ORM, in a batch beside one
by one, for OCPP 1.6 and 2.0.1. Each round releases the two writes together (a Barrier) on
PostgreSQL, each on its own connection."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from chargers.models import Charger, ChargingSession
from chargers.sessions import transactions
from chargers.sessions.opening import OpenRequest, open_batched, open_orm
from tests.chargers.v201.conftest import tx_event
from tests.concurrency import all_at_once, errors
from tests.factories import ChargerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]

ROUNDS = 8  # two starts released together: the race is met in some rounds, not all
HELD_ROUNDS = 4  # the batch inside a held start: met every round, each side newer twice


def _running(charger: Charger) -> list[ChargingSession]:
    return list(
        ChargingSession.objects.filter(
            charger=charger, connector_id=1, status=ChargingSession.Status.ACTIVE
        )
    )


def _start(charger: Charger, n: int, k: int, base: Any) -> OpenRequest:
    return OpenRequest(
        charger_id=charger.pk,
        connector_id=1,
        id_tag=f"CARD-{n}-{k}",
        meter_start=Decimal(1000 * n + k),
        started_at=base + timedelta(minutes=3 * n, seconds=k),
        transaction_id=50_000 + 10 * n + k,
        token=None,
    )


def _check_round(charger: Charger, newer_id_tag: str) -> None:
    running = _running(charger)
    assert [s.id_tag for s in running] == [newer_id_tag], [(s.pk, s.id_tag) for s in running]


def test_two_different_1_6_starts_at_once_leave_the_newer_running():
    charger = ChargerFactory()
    base = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    for n in range(ROUNDS):
        all_at_once(*[partial(open_orm, _start(charger, n, k, base)) for k in (0, 1)])
        _check_round(charger, f"CARD-{n}-1")
    # Every start is kept: the older of each round closed as superseded, not deleted.
    assert ChargingSession.objects.filter(charger=charger).count() == 2 * ROUNDS


def _batch_inside(one_by_one: Callable[[], Any], batch: Callable[[], Any]) -> None:
    """The batch runs while a start one by one has opened its session and not yet committed (a
    thread holds its transaction open): the moment two starts can both find the connector free.
    The held transaction commits once the batch has finished or waits for a lock."""
    opened, finished = threading.Event(), threading.Event()
    results: list[Any] = []

    def held() -> None:
        try:
            with transaction.atomic():
                results.append(one_by_one())
                opened.set()
                deadline = time.monotonic() + 60
                while not finished.is_set() and not _a_backend_waits_for_a_lock():
                    assert time.monotonic() < deadline, "the batch neither ended nor waited"
                    finished.wait(0.02)
        except BaseException as exc:
            results.append(exc)
            opened.set()
        finally:
            connection.close()

    def run_batch() -> None:
        try:
            results.append(batch())
        except BaseException as exc:
            results.append(exc)
        finally:
            finished.set()
            connection.close()

    threads = [threading.Thread(target=held), threading.Thread(target=run_batch)]
    threads[0].start()
    assert opened.wait(60)
    threads[1].start()
    for thread in threads:
        thread.join(120)
    assert not errors(results), results


def _a_backend_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_clear_snapshot()"
        )  # read now, not at the transaction's start
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_batched_1_6_start_beside_one_by_one_leaves_the_newer_running():
    charger = ChargerFactory()
    base = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    for n in range(HELD_ROUNDS):
        batched, one_by_one = _start(charger, n, n % 2, base), _start(charger, n, 1 - n % 2, base)
        _batch_inside(partial(open_orm, one_by_one), partial(asyncio.run, open_batched([batched])))
        _check_round(charger, f"CARD-{n}-1")
    assert ChargingSession.objects.filter(charger=charger).count() == 2 * HELD_ROUNDS


def _started(n: int, k: int) -> dict:
    # Round n's two transactions, k = 1 the newer; rounds move forward in time.
    stamp = (
        timezone.now().replace(microsecond=0) - timedelta(hours=2, minutes=-3 * n, seconds=-k)
    ).isoformat()
    return tx_event(
        "Started", 0, f"TX-{n}-{k}", timestamp=stamp, wh=1000 * n + k, id_token=f"04A{n}{k}"
    )


def _record(charger: Charger, payload: dict) -> Any:
    return transactions.transaction_event_record(
        charger_id=charger.pk, payload=payload, received_at=timezone.now()
    )


def _started_request(charger: Charger, payload: dict, transaction_id: int) -> Any:
    received = timezone.now()
    return transactions.StartedRequest(
        charger_id=charger.pk,
        event=transactions.read_transaction_event(payload, received),
        payload=payload,
        storable=payload,
        received_at=received,
        transaction_id=transaction_id,
        id_tag_status=None,
        token_id=None,
        decision_record=None,
    )


def _check_round_201(charger: Charger, n: int) -> None:
    running = _running(charger)
    assert [s.ocpp_transaction_id for s in running] == [f"TX-{n}-1"], [
        (s.pk, s.ocpp_transaction_id) for s in running
    ]


def test_two_different_2_0_1_transactions_started_at_once_leave_the_newer_running():
    charger = ChargerFactory(ocpp_version="2.0.1")
    for n in range(ROUNDS):
        all_at_once(*[partial(_record, charger, _started(n, k)) for k in (0, 1)])
        _check_round_201(charger, n)
    assert ChargingSession.objects.filter(charger=charger).count() == 2 * ROUNDS


def test_a_batched_2_0_1_started_beside_one_by_one_leaves_the_newer_running():
    charger = ChargerFactory(ocpp_version="2.0.1")
    for n in range(HELD_ROUNDS):
        k = n % 2  # the batch takes the newer in half the rounds, the older in the others
        request = _started_request(charger, _started(n, k), 60_000 + n)
        _batch_inside(
            partial(_record, charger, _started(n, 1 - k)),
            partial(asyncio.run, transactions.started_batched([request])),
        )
        _check_round_201(charger, n)
    assert ChargingSession.objects.filter(charger=charger).count() == 2 * HELD_ROUNDS
