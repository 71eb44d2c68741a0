"""Celery tasks: thin wrappers around services (eager, in-process, without a broker)."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(
    name="metering.session_signed_ingest",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def session_signed_ingest_task(session_id: int | list[int]) -> int:
    """One session, or a batch announced together (a restart storm's stops): each session of a
    batch that fails is queued again on its own, with this task's retries."""
    from .services import session_signed_ingest

    if not isinstance(session_id, list):
        return len(session_signed_ingest(session_id=session_id))
    found = 0
    for one in session_id:
        try:
            found += len(session_signed_ingest(session_id=one))
        except Exception:
            try:  # on its own, with the task's retries (eager without a broker: logged here)
                session_signed_ingest_task.delay(one)
            except Exception:
                logger.exception("%s failed for session %s", session_signed_ingest_task.name, one)
    return found


@shared_task(
    name="metering.transaction_signed_ingest",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def transaction_signed_ingest_task(charger_id: int, transaction_id: int) -> int:
    from .services import transaction_signed_ingest

    return len(transaction_signed_ingest(charger_id=charger_id, transaction_id=transaction_id))
