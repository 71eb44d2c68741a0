"""Property: whatever one charger sends, it is answered on the same socket, and another charger's
frames keep reaching the log and its Heartbeats keep being answered. Hypothesis mixes the frame classes that once stalled the log
(NUL, lone surrogates, NaN/Infinity/1e999, out-of-range numbers, odd transaction messages,
invalid JSON, large frames) and sends them to the real server over a real socket.
Bounded and derandomized: the same examples every run, well under a minute."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargers.models import OcppMessage
from tests.factories import ChargerFactory, TokenFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HUGE = "__HUGE_NUMBER__"  # replaced by 1e999 in the frame text (JSON has no way to say it)

poison_text = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\u0000\ud83d", "é", ""])
poison_number = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), HUGE, -1, 2**31, 2**63, 10**40, -(2**70)]
)
odd_value = st.one_of(
    poison_text, poison_number, st.integers(), st.text(max_size=30), st.none(), st.booleans()
)


def _transaction_payload(action: str, values: dict) -> dict:
    base = {
        "StartTransaction": {
            "connectorId": 1,
            "idTag": "04A1B2C3",
            "meterStart": 0,
            "timestamp": "2026-11-20T10:00:00Z",
        },
        "StopTransaction": {
            "transactionId": 1,
            "meterStop": 10,
            "timestamp": "2026-11-20T11:00:00Z",
        },
        "MeterValues": {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2026-11-20T10:00:00Z", "sampledValue": [{"value": "1"}]}],
        },
        "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        "DataTransfer": {"vendorId": "X"},
        "Heartbeat": {},
        "Authorize": {"idTag": "04A1B2C3"},
    }[action]
    return {**base, **values}


@st.composite
def frames(draw) -> tuple[str, bool]:
    """(frame text, whether the server must answer it)."""
    kind = draw(st.sampled_from(["call", "call", "call", "not_json", "not_array", "result", "big"]))
    uid = draw(
        st.one_of(st.text(min_size=1, max_size=36), poison_text.filter(bool), st.just("x" * 40))
    )
    if kind == "not_json":
        # (A raw lone surrogate is not here: it has no UTF-8 form, so no text frame can carry it;
        # as a JSON escape it is in the other kinds.)
        return draw(
            st.sampled_from(["{", "[2,", "nul\x00l", '[2, "a", "Heartbeat", {]', "é{\\ud800"])
        ), True
    if kind == "not_array":
        return json.dumps(
            draw(st.one_of(st.dictionaries(st.text(max_size=5), odd_value, max_size=3), odd_value))
        ).replace(f'"{HUGE}"', "1e999"), True
    if kind == "result":
        return json.dumps(
            [draw(st.sampled_from([3, 4])), uid, {}] + (["E", "d", {}] if False else [])
        ), False
    action = draw(
        st.sampled_from(
            [
                "StartTransaction",
                "StopTransaction",
                "MeterValues",
                "StatusNotification",
                "DataTransfer",
                "Heartbeat",
                "Authorize",
                "NoSuchAction",
            ]
        )
    )
    fields = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "connectorId",
                    "transactionId",
                    "meterStart",
                    "meterStop",
                    "idTag",
                    "reason",
                    "timestamp",
                    "data",
                    "meterValue",
                    "extra",
                    "\x00key",
                ]
            ),
            odd_value,
            max_size=4,
        )
    )
    payload = _transaction_payload(action if action != "NoSuchAction" else "Heartbeat", fields)
    if kind == "big":
        payload["data"] = "A" * 300_000
    text = json.dumps([2, uid, action, payload])
    return text.replace(f'"{HUGE}"', "1e999"), True


class Conn:
    def __init__(self, url: str):
        self.url = url
        self.ws = None

    async def ensure(self):
        if self.ws is None or self.ws.close_code is not None:
            self.ws = await websockets.connect(self.url, subprotocols=["ocpp1.6"], max_size=2**22)
        return self.ws


def _in_log(unique_ids: set[str]) -> bool:
    return unique_ids <= set(
        OcppMessage.objects.filter(unique_id__in=unique_ids).values_list("unique_id", flat=True)
    )


def test_no_frame_from_one_charger_stops_another(live_server_proc):
    bad_charger = ChargerFactory(station_id="FUZZ-BAD")
    ChargerFactory(station_id="FUZZ-OK", property=bad_charger.property)
    TokenFactory(uid="04A1B2C3", organization=bad_charger.property.organization)
    bad = Conn(f"{live_server_proc.ws_url}/ocpp/FUZZ-BAD")
    good = Conn(f"{live_server_proc.ws_url}/ocpp/FUZZ-OK")
    loop = asyncio.new_event_loop()
    markers: set[str] = set()

    async def one_example(batch: list[tuple[str, bool]]) -> None:
        bad_ws, good_ws = await bad.ensure(), await good.ensure()
        for text, answered in batch:
            try:
                await bad_ws.send(text)
                if answered:
                    reply = json.loads(await asyncio.wait_for(bad_ws.recv(), 15))
                    assert reply[0] in (3, 4), reply
            except websockets.ConnectionClosed as exc:
                # Every frame here is answered (a CALLERROR for what cannot be read) on the same
                # socket: a charger dropped for a frame resends it after reconnecting, for ever.
                raise AssertionError(f"the charger was dropped ({exc}) for {text[:200]!r}") from exc
            marker = f"ok-{uuid.uuid4().hex[:20]}"
            await good_ws.send(json.dumps([2, marker, "Heartbeat", {}]))
            reply = json.loads(await asyncio.wait_for(good_ws.recv(), 15))
            assert reply[:2] == [3, marker], reply
            markers.add(marker)

    @settings(
        max_examples=25,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(st.lists(frames(), min_size=1, max_size=4))
    def run(batch):
        loop.run_until_complete(one_example(batch))

    try:
        run()
        # The healthy charger's frames all reached the log within a few seconds.
        deadline = time.monotonic() + 5
        while not _in_log(markers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _in_log(markers)
        log = open(live_server_proc.log.name).read()
        assert "Writing the OCPP message log failed" not in log, log[-3000:]
    finally:
        for conn in (bad, good):
            if conn.ws is not None:
                loop.run_until_complete(conn.ws.close())
        loop.close()


ECHOED_POISON = [
    # (frame text, what the answer must say) - the unique id, or the action in an error text,
    # comes back in the answer: a lone surrogate has no UTF-8 form and used to drop the charger.
    ('[2,"s1\\udfff","Heartbeat",{}]', "s1\udfff"),
    (
        '[2,"s2\\ud800x","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]',
        "s2\ud800x",
    ),
    ('[2,"s3","No\\ud800Such",{}]', "s3"),
    ('[2,"s4\\u0000","Heartbeat",{}]', "s4\x00"),
]


def test_an_answer_echoing_a_lone_surrogate_is_sent_and_the_charger_stays_connected(
    live_server_proc,
):
    ChargerFactory(station_id="FUZZ-ECHO")
    loop = asyncio.new_event_loop()

    async def talk() -> list:
        async with websockets.connect(
            f"{live_server_proc.ws_url}/ocpp/FUZZ-ECHO", subprotocols=["ocpp1.6"]
        ) as ws:
            replies = []
            for text, _ in ECHOED_POISON:
                await ws.send(text)
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
            await ws.send('[2,"after","Heartbeat",{}]')  # the same socket, still served
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
            return replies

    try:
        replies = loop.run_until_complete(talk())
    finally:
        loop.close()
    assert [r[1] for r in replies] == [uid for _, uid in ECHOED_POISON] + ["after"]
    assert [r[0] for r in replies] == [3, 3, 4, 3, 3]
    assert replies[2][2] == "NotImplemented" and "Such" in replies[2][3]
