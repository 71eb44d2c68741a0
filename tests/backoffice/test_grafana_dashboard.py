"""deploy/grafana/evportal-operations.json reads exactly the series GET /metrics exports: every
expression names exported series only, and every exported family has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from backoffice import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "evportal-operations.json"
NAME = re.compile(r"\b(evportal_[a-z0-9_]+)\b")


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_expression_names_only_exported_series():
    exported = metrics.exported()
    sample_names = {name for names in exported.values() for name in names}
    found = expressions()
    assert found
    for expr in found:
        named = NAME.findall(expr)
        assert named, f"names no series of ours: {expr}"
        unknown = set(named) - sample_names
        assert not unknown, f"{expr}: not exported: {unknown}"


def test_every_exported_family_is_on_the_dashboard():
    used = {name for expr in expressions() for name in NAME.findall(expr)}
    missing = [family for family, names in metrics.exported().items() if not used & set(names)]
    assert not missing


def test_the_exported_families_are_the_ones_documented():
    # The families the issue asks for (docs/operations.md lists them): a rename breaks dashboards.
    assert set(metrics.exported()) >= {
        "evportal_ocpp_connected_chargers",
        "evportal_ocpp_messages",
        "evportal_ocpp_handler_seconds",
        "evportal_message_log_buffered_frames",
        "evportal_message_log_buffered_bytes",
        "evportal_journal_backlog_bytes",
        "evportal_db_pool_connections",
        "evportal_outbound_deliveries",
        "evportal_celery_queue_length",
        "evportal_periodic_task_last_success_timestamp_seconds",
    }
    docs = (DASHBOARD.parents[2] / "docs" / "operations.md").read_text()
    for family in metrics.exported():
        assert family in docs, family
