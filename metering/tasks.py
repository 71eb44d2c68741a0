"""Celery tasks: thin wrappers around services (eager, in-process, without a broker)."""

from celery import shared_task


@shared_task(
    name="metering.session_signed_ingest",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def session_signed_ingest_task(session_id: int) -> int:
    from .services import session_signed_ingest

    return len(session_signed_ingest(session_id=session_id))


@shared_task(
    name="metering.transaction_signed_ingest",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def transaction_signed_ingest_task(charger_id: int, transaction_id: int) -> int:
    from .services import transaction_signed_ingest

    return len(transaction_signed_ingest(charger_id=charger_id, transaction_id=transaction_id))
