"""This process's OCPP gauges, set at each metrics sample (backoffice.metrics.add_sampler).

Reads memory only (and one stat of the journal file while it is engaged): the sockets open per
OCPP version, the message-log buffer and the journal's backlog.
"""

from __future__ import annotations

from chargers.connections.consumer import open_by_version
from chargers.messagelog.log import writer
from chargers.plumbing import ocpp_metrics
from chargers.plumbing.journal import journal


def sample() -> None:
    for version, count in open_by_version().items():
        ocpp_metrics.connected.labels(version).set(count)
    ocpp_metrics.log_buffered_frames.set(writer.buffered_frames)
    ocpp_metrics.log_buffered_bytes.set(writer.buffered_bytes)
    ocpp_metrics.log_dead_letters.set(writer.dead_letters)
    ocpp_metrics.journal_backlog_bytes.set(journal.backlog_bytes())
    ocpp_metrics.journal_engaged.set(1 if journal.engaged else 0)
