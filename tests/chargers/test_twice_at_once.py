"""The same thing twice, at once: a charger's message delivered twice (its retry after a lost
answer, or its reconnect while the first is still being written), a StopTransaction racing the
stale-session sweep, a charger created twice by a double submit. Each test releases its threads
together (a Barrier) on PostgreSQL, each thread on its own connection, and checks that nothing
was doubled or rewritten: one session, one close, one announcement, the charger's own stop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from chargers.devices import stale
from chargers.models import Charger, ChargingSession, Command, MeterValue, TransactionEvent
from chargers.ocpp.tolerant import MeterReading, Sample
from chargers.sessions.closing import StopRequest, close_batched, close_orm
from chargers.sessions.opening import OpenRequest, open_orm
from tests.concurrency import at_once
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]


def _session(charger: Charger, transaction_id: int, **fields: Any) -> ChargingSession:
    started = timezone.now() - timedelta(hours=1)
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=transaction_id,
        id_tag="CARD-1",
        started_at=started,
        meter_start_wh=Decimal(1000),
        **fields,
    )


def _stop(session: ChargingSession, wh: int, reason: str = "EVDisconnected") -> StopRequest:
    stopped = session.started_at + timedelta(minutes=50)
    return StopRequest(
        charger_id=session.charger_id,
        transaction_id=session.transaction_id,
        meter_stop=Decimal(wh),
        stopped_at=stopped,
        reason=reason,
        readings=[MeterReading(stopped, [Sample(str(wh), unit="Wh")])],
    )


# -- a session's close ---------------------------------------------------------------------------


def test_a_stop_delivered_twice_at_once_closes_once(announced_finished):
    charger = ChargerFactory()
    sessions = [_session(charger, 7100 + n) for n in range(6)]
    for session in sessions:
        stop = _stop(session, 9000)
        results = at_once(*[partial(close_orm, stop)] * 2)
        assert all(isinstance(r, ChargingSession) for r in results), results
    for session in sessions:
        session.refresh_from_db()
        assert (session.status, session.meter_stop_wh, session.stop_reason) == (
            "completed",
            Decimal(9000),
            "EVDisconnected",
        )
        # Its readings once, announced finished once: billing prices it once.
        assert MeterValue.objects.filter(session=session).count() == 1
    assert sorted(announced_finished) == sorted(s.pk for s in sessions)


def test_a_stop_racing_the_stale_sweep_keeps_the_chargers_own_stop(announced_finished):
    """The 1.6 sweep closes a session whose StopTransaction never came (at its last reading,
    `NoStopTransaction`); the stop arrives just then. Whichever commits first, the session ends
    where the charger says, and each close that changed it is announced once (the sweep's
    estimate, if it came first, then the charger's stop that replaces it)."""
    charger = ChargerFactory()
    swept = 0
    sessions = [_session(charger, 7200 + n) for n in range(8)]
    for session in sessions:
        stop = _stop(session, 8000, reason="Local")
        closed_by_stop, closed_by_sweep = at_once(
            *[partial(close_orm, stop), partial(stale.close_without_stop, session.pk)]
        )
        assert isinstance(closed_by_stop, ChargingSession), closed_by_stop
        assert closed_by_sweep in (True, False), closed_by_sweep
        swept += closed_by_sweep
    for session in sessions:
        session.refresh_from_db()
        assert (session.status, session.meter_stop_wh, session.stop_reason) == (
            "completed",
            Decimal(8000),
            "Local",
        )
    assert len(announced_finished) == len(sessions) + swept


# -- 2.0.1: an Ended racing the sweep, a transaction's first events at once ----------------------


def _event(kind: str, seq_no: int, tx_id: str, minute: int, wh: int, **extra: Any) -> dict:
    from tests.chargers.v201.conftest import tx_event

    stamp = (
        timezone.now().replace(microsecond=0) - timedelta(hours=2, minutes=-minute)
    ).isoformat()
    return tx_event(kind, seq_no, tx_id, timestamp=stamp, wh=wh, **extra)


def _record(charger: Charger, payload: dict) -> Any:
    from chargers.sessions.transactions import transaction_event_record

    return transaction_event_record(
        charger_id=charger.pk, payload=payload, received_at=timezone.now()
    )


def test_an_ended_racing_the_stale_sweep_keeps_the_chargers_end(announced_finished):
    """The E14 check was told the transaction is over (nothing queued) just as its Ended
    arrives: the session ends where the Ended says, announced once per close that changed it."""
    charger = ChargerFactory(ocpp_version="2.0.1")
    swept, ids = 0, []
    for n in range(8):
        tx_id = f"TX-SWEEP-{n}"
        _record(charger, _event("Started", 0, tx_id, 0, 1000, id_token="04A1B2C3"))
        session = ChargingSession.objects.get(ocpp_transaction_id=tx_id)
        ids.append(session.pk)
        ended = _event("Ended", 1, tx_id, 40, 9000, stopped_reason="EVDisconnected")
        over = {"ongoingIndicator": False, "messagesInQueue": False}
        recorded, verdict = at_once(
            *[
                partial(_record, charger, ended),
                partial(stale.transaction_status_apply, session_id=session.pk, response=over),
            ]
        )
        assert not isinstance(recorded, BaseException), recorded
        assert verdict.outcome == "ended", verdict
        swept += verdict.closed
    for session in ChargingSession.objects.filter(pk__in=ids):
        assert (session.status, session.meter_stop_wh, session.stop_reason) == (
            "completed",
            Decimal(9000),
            "EVDisconnected",
        )
    assert len(announced_finished) == len(ids) + swept


def test_a_transactions_first_events_at_once_make_one_session_that_ends(announced_finished):
    """A charger that reconnects resends what it had queued while its first socket's frames
    are still being written: a transaction's Started, Updated and Ended reach us at once. One
    session, and it ends as the Ended says (never left running by an event folded without it)."""
    charger = ChargerFactory(ocpp_version="2.0.1")
    for n in range(10):
        tx_id = f"TX-FIRST-{n}"
        events = [
            _event("Started", 0, tx_id, 0, 1000, id_token="04A1B2C3"),
            _event("Updated", 1, tx_id, 20, 5000),
            _event("Ended", 2, tx_id, 40, 9000, stopped_reason="Local"),
        ]
        results = at_once(*[partial(_record, charger, payload) for payload in events])
        assert not [r for r in results if isinstance(r, BaseException)], results
        session = ChargingSession.objects.get(ocpp_transaction_id=tx_id)
        assert (session.status, session.meter_start_wh, session.meter_stop_wh) == (
            "completed",
            Decimal(1000),
            Decimal(9000),
        ), tx_id
    # One session per transaction, each event stored once. (Announced finished once per fold
    # that changed its end: an Ended folded before the Started is priced again when the Started
    # moves its meter start, as for any out-of-order delivery.)
    assert ChargingSession.objects.filter(charger=charger).count() == 10
    assert TransactionEvent.objects.filter(charger=charger).count() == 30
    assert set(announced_finished) == set(
        ChargingSession.objects.filter(charger=charger).values_list("pk", flat=True)
    )


# -- a charger created twice at once -------------------------------------------------------------


def test_the_same_charger_created_twice_at_once_through_the_api_is_one_charger_and_a_400():
    prop = PropertyFactory()
    owner = MembershipFactory(organization=prop.organization, role="owner").user

    def create(api: APIClient, station_id: str) -> Any:
        return api.post(
            "/api/v1/chargers/", {"station_id": station_id, "property": prop.pk}, format="json"
        )

    apis = [APIClient(), APIClient()]
    for api in apis:
        api.force_authenticate(owner)
    for n in range(4):
        station_id = f"TWICE-API-{n}"
        answers = at_once(*[partial(create, api, station_id) for api in apis])
        assert sorted(a.status_code for a in answers) == [201, 400], answers
        refused = next(a for a in answers if a.status_code == 400)
        assert refused.json() == {"station_id": ["This station id cannot be used."]}
        assert Charger.objects.filter(station_id=station_id).count() == 1


def test_the_same_charger_added_twice_at_once_in_the_portal_is_one_charger_and_a_400():
    prop = PropertyFactory()
    owner = MembershipFactory(organization=prop.organization, role="owner").user

    def add(client: Client, station_id: str) -> Any:
        return client.post(
            reverse("chargers:charger-add", args=[prop.pk]),
            {"station_id": station_id, "security_profile": "1"},
        )

    clients = [Client(), Client()]  # two browser tabs
    for client in clients:
        client.force_login(owner)
    for n in range(4):
        station_id = f"TWICE-WEB-{n}"
        answers = at_once(*[partial(add, client, station_id) for client in clients])
        assert sorted(a.status_code for a in answers) == [200, 400], answers
        refused = next(a for a in answers if a.status_code == 400)
        assert "This station id cannot be used." in refused.content.decode()
        assert Charger.objects.filter(station_id=station_id).count() == 1


# -- a start delivered twice ---------------------------------------------------------------------


def test_a_start_delivered_twice_at_once_opens_one_session(announced_started):
    """A 1.6 charger resends its StartTransaction (the answer was lost) while the first is still
    being written: each handler drew its own transaction id, both get the first's session."""
    charger = ChargerFactory()
    started = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    for n in range(6):
        start = OpenRequest(
            charger_id=charger.pk,
            connector_id=1,
            id_tag=f"CARD-{n}",
            meter_start=Decimal(1000 + n),
            started_at=started + timedelta(minutes=n),
            token=None,
        )
        first, second = at_once(
            *[partial(open_orm, replace(start, transaction_id=9100 + 2 * n + k)) for k in (0, 1)]
        )
        assert isinstance(first, ChargingSession) and isinstance(second, ChargingSession)
        assert first.pk == second.pk and first.transaction_id == second.transaction_id
    assert ChargingSession.objects.filter(charger=charger).count() == 6
    assert sorted(announced_started) == sorted(
        ChargingSession.objects.filter(charger=charger).values_list("pk", flat=True)
    )


def test_a_started_event_delivered_twice_at_once_opens_one_session(announced_started):
    charger = ChargerFactory(ocpp_version="2.0.1")
    for n in range(6):
        started = _event("Started", 0, f"TX-TWICE-{n}", 0, 1000, id_token="04A1B2C3")
        outcomes = at_once(*[partial(_record, charger, started)] * 2)
        assert sorted((o.started, o.duplicate) for o in outcomes) == [(False, True), (True, False)]
        assert outcomes[0].session.pk == outcomes[1].session.pk
    assert ChargingSession.objects.filter(charger=charger).count() == 6
    assert TransactionEvent.objects.filter(charger=charger).count() == 6
    assert len(announced_started) == 6


# -- a command pressed twice ---------------------------------------------------------------------


@pytest.fixture
def online_charger(settings):
    """A charger marked online with no socket behind it: a command waits its (short) timeout,
    plus the 2 s the sender allows for the hops (chargers/devices/commands.py)."""
    from tests.guest.conftest import make_online

    settings.OCPP_CALL_TIMEOUT = 0.1
    charger = make_online(ChargerFactory(station_id="TWICE-CMD"), statuses=("Available",))
    token = TokenFactory(uid="CAFE0042", organization=charger.property.organization)
    owner = MembershipFactory(organization=charger.property.organization, role="owner").user
    return charger, owner, token


def test_a_reset_or_a_remote_start_pressed_twice_in_the_portal_is_sent_once(online_charger):
    charger, owner, token = online_charger
    clients = [Client(), Client()]  # two tabs, or a double click
    for client in clients:
        client.force_login(owner)
    url = reverse("chargers:charger-command", args=[charger.station_id])
    for form in (
        {"action": "Reset", "reset_type": "Hard"},
        {"action": "RemoteStartTransaction", "token": token.pk, "connector_id": 1},
    ):
        pages = at_once(*[partial(client.post, url, form, follow=True) for client in clients])
        told = [page.content.decode() for page in pages]
        assert sum("was not sent again" in page for page in told) == 1, form
        assert Command.objects.filter(charger=charger, action=form["action"]).count() == 1
    # Answered (or timed out): the next press is sent.
    clients[0].post(url, {"action": "Reset", "reset_type": "Hard"})
    assert Command.objects.filter(charger=charger, action="Reset").count() == 2


def test_an_unlock_asked_twice_at_once_through_the_api_is_sent_once_and_a_409(online_charger):
    charger, owner, _ = online_charger
    apis = [APIClient(), APIClient()]
    for api in apis:
        api.force_authenticate(owner)
    url = f"/api/v1/chargers/{charger.station_id}/commands/UnlockConnector/"
    answers = at_once(*[partial(api.post, url, {"connectorId": 1}, format="json") for api in apis])
    assert sorted(a.status_code for a in answers) == [409, 504], answers
    assert next(a for a in answers if a.status_code == 409).json()["status"] == "pending"
    assert Command.objects.filter(charger=charger, action="UnlockConnector").count() == 1


def test_a_stop_delivered_twice_through_the_batch_and_one_by_one_closes_once(announced_finished):
    """On PostgreSQL a stop is closed by the batched UPDATE; its resend may meet it there or in
    the one-by-one path (journal replay, a batch's leftovers) at the same moment."""
    charger = ChargerFactory()
    sessions = [_session(charger, 7300 + n) for n in range(6)]
    for session in sessions:
        stop = _stop(session, 6000)
        batched, one_by_one = at_once(
            *[partial(asyncio.run, close_batched([stop])), partial(close_orm, stop)]
        )
        assert isinstance(batched, list) and isinstance(one_by_one, ChargingSession), batched
        # Late: the same stop again, through the batch.
        assert asyncio.run(close_batched([stop]))[0].pk == session.pk
    for session in sessions:
        session.refresh_from_db()
        assert (session.meter_stop_wh, session.stop_reason) == (Decimal(6000), "EVDisconnected")
        assert MeterValue.objects.filter(session=session).count() == 1
    assert sorted(announced_finished) == sorted(s.pk for s in sessions)


def test_a_journal_entry_replayed_twice_at_once_is_applied_once():
    """Two replays of one outage journal (a process restarted while its first replay ran)."""
    from chargers.sessions import replay

    charger = ChargerFactory()
    session = _session(charger, 7400)
    stamp = timezone.now().replace(microsecond=0)
    for seq in range(1, 7):
        entry = {
            "seq": seq,
            "action": "MeterValues",
            "charger_id": charger.pk,
            "received_at": stamp.isoformat(),
            "payload": {
                "connectorId": 1,
                "transactionId": session.transaction_id,
                "meterValue": [
                    {
                        "timestamp": (stamp + timedelta(minutes=seq)).isoformat(),
                        "sampledValue": [{"value": str(1000 + 100 * seq), "unit": "Wh"}],
                    }
                ],
            },
        }
        results = at_once(*[partial(replay.journal_apply, "twice-journal", entry)] * 2)
        assert results == [None, None], results
    assert MeterValue.objects.filter(session=session).count() == 6


def test_an_ended_event_delivered_twice_at_once_is_announced_finished_once(announced_finished):
    charger = ChargerFactory(ocpp_version="2.0.1")
    ids = []
    for n in range(6):
        tx_id = f"TX-END-{n}"
        _record(charger, _event("Started", 0, tx_id, 0, 1000, id_token="04A1B2C3"))
        ended = _event("Ended", 1, tx_id, 40, 7000, stopped_reason="EVDisconnected")
        outcomes = at_once(*[partial(_record, charger, ended)] * 2)
        assert sorted((o.ended, o.duplicate) for o in outcomes) == [(False, True), (True, False)]
        ids.append(outcomes[0].session.pk)
    assert sorted(announced_finished) == sorted(ids)
    assert MeterValue.objects.filter(session_id__in=ids).count() == 12  # Started's and Ended's
