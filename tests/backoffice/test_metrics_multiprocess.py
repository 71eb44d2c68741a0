"""prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR): what several processes
counted is added up by whichever process answers the scrape, per-process gauges keep their pid,
and a process that stopped leaves the gauges (not the counters). The cluster itself:
tests/e2e/test_metrics_cluster.py."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from backoffice import metrics

WORK = """
import os
from backoffice import metrics
from chargers.plumbing import ocpp_metrics
for _ in range({frames}):
    ocpp_metrics.message("in", "1.6", 2, "Heartbeat")
ocpp_metrics.message("in", "2.0.1", 2, "MadeUpAction")
ocpp_metrics.handled("1.6", "Heartbeat", {seconds})
ocpp_metrics.connected.labels("1.6").set({connected})
metrics.delivery("webhook", ok={ok})
print(os.getpid())
"""


def run(directory: str, **values: object) -> int:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + WORK.format(**values)],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "true",
            "PROMETHEUS_MULTIPROC_DIR": directory,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def samples(body: bytes) -> list:
    return [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]


def total(found: list, name: str, **labels: str) -> float:
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


def test_a_scrape_adds_up_every_process_and_keeps_each_ones_gauges(tmp_path, settings):
    directory = str(tmp_path)
    first = run(directory, frames=3, seconds=0.002, connected=2, ok=True)
    second = run(directory, frames=4, seconds=0.3, connected=5, ok=False)
    settings.PROMETHEUS_MULTIPROC_DIR = directory  # this process answers the scrape
    found = samples(metrics.render())

    heartbeats = {"direction": "in", "version": "1.6", "message_type": "CALL"}
    assert total(found, "evportal_ocpp_messages_total", action="Heartbeat", **heartbeats) == 7
    # The made-up action is bounded to "other" in every process.
    assert total(found, "evportal_ocpp_messages_total", version="2.0.1", action="other") == 2
    assert not [s for s in found if s.labels.get("action") == "MadeUpAction"]
    histogram = {"version": "1.6", "action": "Heartbeat"}
    assert total(found, "evportal_ocpp_handler_seconds_count", **histogram) == 2
    assert total(found, "evportal_ocpp_handler_seconds_bucket", le="0.005", **histogram) == 1
    assert total(found, "evportal_outbound_deliveries_total", kind="webhook", outcome="sent") == 1
    assert total(found, "evportal_outbound_deliveries_total", kind="webhook", outcome="failed") == 1
    connected = {
        s.labels["pid"]: s.value
        for s in found
        if s.name == "evportal_ocpp_connected_chargers" and s.labels["version"] == "1.6"
    }
    assert connected == {str(first): 2, str(second): 5}

    # The first process stopped: its gauges leave the scrape, its counts stay in the totals.
    metrics.process_exit(first)
    found = samples(metrics.render())
    connected = {
        s.labels["pid"]: s.value
        for s in found
        if s.name == "evportal_ocpp_connected_chargers" and s.labels["version"] == "1.6"
    }
    assert connected == {str(second): 5}
    assert total(found, "evportal_ocpp_messages_total", action="Heartbeat", **heartbeats) == 7
