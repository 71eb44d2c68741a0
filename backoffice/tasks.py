"""Background work of the shared layer."""

from __future__ import annotations

from celery import shared_task

from . import idempotency


@shared_task(name="backoffice.idempotency_keys_prune")
def idempotency_keys_prune() -> int:
    """Forget the API's Idempotency-Keys older than a day."""
    return idempotency.prune()
