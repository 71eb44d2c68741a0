"""Background work of the shared layer."""

from __future__ import annotations

from celery import shared_task

from . import idempotency


@shared_task(name="backoffice.idempotency_keys_prune")
def idempotency_keys_prune() -> int:
    """Forget the API's Idempotency-Keys older than a day."""
    return idempotency.prune()


@shared_task(name="backoffice.pending_tasks_send")
def pending_tasks_send() -> int:
    """Send the jobs the broker did not take when they were queued (backoffice/queueing.py)."""
    from . import queueing

    return queueing.pending_send()
