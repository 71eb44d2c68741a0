"""Signal receivers: no rules here, only a hand-off to the verification task on commit."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def session_signed_check(sender: Any, session_id: int, **kwargs: Any) -> None:
    """A session started or finished: verify its signed values after the commit, one task for
    all the sessions announced together (chargers.signals.batched). A failure is logged; the raw
    values stay where chargers stored them and billing checks again."""
    from chargers.signals import batched

    batched(kwargs, "metering.signed_check", session_id, _queue_on_commit)


def _queue_on_commit(session_ids: list[int]) -> None:
    from .tasks import session_signed_ingest_task

    def queue() -> None:
        try:
            session_signed_ingest_task.delay(
                session_ids[0] if len(session_ids) == 1 else session_ids
            )
        except Exception:
            logger.exception("Verifying the signed values of sessions %s failed", session_ids[:10])

    transaction.on_commit(queue)


def signed_values_arrived(
    sender: Any, charger_id: int, transaction_id: int | None = None, **kwargs: Any
) -> None:
    """Signed values arrived in a 1.6 MeterValues (the signed start): verify them on arrival."""
    from .tasks import transaction_signed_ingest_task

    if transaction_id is None:
        return
    try:
        transaction_signed_ingest_task.delay(charger_id, transaction_id)
    except Exception:
        logger.exception("Verifying the signed values of transaction %s failed", transaction_id)
