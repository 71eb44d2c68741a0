"""When billing's background work runs: services queue a task here by its name, so they never
import `billing/tasks.py` (tasks call services, never the other way; the app registers the
tasks in `BillingConfig.ready()`)."""

from __future__ import annotations

from backoffice import queueing

RECONCILIATION_IMPORT = "billing.reconciliation_import"
STATEMENT_GENERATE = "billing.statement_generate"


def on_commit(name: str, *args: int) -> None:
    """Queue the task `name` with `args` once the current transaction commits (in-process
    without a broker). A name nobody registered fails here; a broker that is down does not fail
    the caller after its write committed: the job is kept and sent later."""
    queueing.on_commit(name, *args)
