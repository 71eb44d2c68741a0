"""When billing's background work runs: services queue a task here by its name, so they never
import `billing/tasks.py` (tasks call services, never the other way; the app registers the
tasks in `BillingConfig.ready()`)."""

from __future__ import annotations

from celery import current_app
from django.db import transaction

RECONCILIATION_IMPORT = "billing.reconciliation_import"
STATEMENT_GENERATE = "billing.statement_generate"


def on_commit(name: str, *args: int) -> None:
    """Queue the task `name` with `args` once the current transaction commits (in-process
    without a broker). The task is looked up now, so a name nobody registered fails here."""
    task = current_app.tasks[name]
    transaction.on_commit(lambda: task.delay(*args))
