"""The OCPP path's Prometheus series (docs/operations.md), bumped by the consumer per frame.

The hot path pays a dictionary lookup and an in-memory increment per frame: the labelled child of
each (direction, version, type, action) is kept here after its first use, no database, no lock
held across an await (prometheus_client's own lock is a plain thread lock around one addition).
Labels are bounded: an action takes its name only when the protocol knows it, else "other", so a
charger sending made-up action names cannot grow the series; no label names a station.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from chargers.ocpp import protocol, protocol21, protocol201

VERSIONS = ("1.6", "2.0.1", "2.1")
_KNOWN = {
    "1.6": protocol.KNOWN_ACTIONS_V16,
    "2.0.1": protocol201.KNOWN_ACTIONS,
    "2.1": protocol21.KNOWN_ACTIONS,
}
_TYPES: dict[int | None, str] = {
    protocol.CALL: "CALL",
    protocol.CALLRESULT: "CALLRESULT",
    protocol.CALLERROR: "CALLERROR",
    protocol.CALLRESULTERROR: "CALLRESULTERROR",  # OCPP-J 2.1
    protocol.SEND: "SEND",  # OCPP-J 2.1
}
OTHER = "other"  # an action no protocol version knows (or a frame that named none)

messages = Counter(
    "evportal_ocpp_messages",
    "OCPP frames received (in) and sent (out), by OCPP version, message type (CALL, CALLRESULT, "
    "CALLERROR, or invalid for a frame that could not be parsed) and action.",
    ["direction", "version", "message_type", "action"],
)
handler_seconds = Histogram(
    "evportal_ocpp_handler_seconds",
    "Time from a charger's CALL to its answer being ready (the handler, its database writes "
    "included), by OCPP version and action.",
    ["version", "action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
connected = Gauge(
    "evportal_ocpp_connected_chargers",
    "Charger websockets open in this process, by OCPP version.",
    ["version"],
    multiprocess_mode="liveall",
)
log_buffered_frames = Gauge(
    "evportal_message_log_buffered_frames",
    "Frames in this process's message-log buffer, not yet written to the database.",
    multiprocess_mode="liveall",
)
log_buffered_bytes = Gauge(
    "evportal_message_log_buffered_bytes",
    "Bytes of the frames in this process's message-log buffer.",
    multiprocess_mode="liveall",
)
log_dead_letters = Gauge(
    "evportal_message_log_dead_letters",
    "Message-log batches this process could not store (logged whole), since it started.",
    multiprocess_mode="liveall",
)
journal_backlog_bytes = Gauge(
    "evportal_journal_backlog_bytes",
    "Bytes of this process's journal not yet replayed into the database (0: none waiting).",
    multiprocess_mode="liveall",
)
journal_engaged = Gauge(
    "evportal_journal_engaged",
    "1 while this process journals transaction messages because the database is unreachable.",
    multiprocess_mode="liveall",
)

_message_children: dict[tuple[str, str, int | None, str], Any] = {}
_handler_children: dict[tuple[str, str], Any] = {}


def action_label(version: str, action: str) -> str:
    """The action as a label: its name when the version knows it, else OTHER."""
    known = _KNOWN.get(version)
    return action if known is not None and action in known else OTHER


def message(direction: str, version: str, message_type: int | None, action: str) -> None:
    """Count one frame (`message_type` None: it could not be parsed)."""
    label = action_label(version, action)
    key = (direction, version, message_type, label)
    child = _message_children.get(key)
    if child is None:
        child = messages.labels(direction, version, _TYPES.get(message_type, "invalid"), label)
        _message_children[key] = child
    child.inc()


def handled(version: str, action: str, seconds: float) -> None:
    """Record how long the CALL `action` took to handle."""
    key = (version, action_label(version, action))
    child = _handler_children.get(key)
    if child is None:
        child = handler_seconds.labels(*key)
        _handler_children[key] = child
    child.observe(seconds)
