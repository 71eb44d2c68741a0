"""Signal receivers: no rules here, only a hand-off to the pricing task on commit."""

from django.db import transaction


def price_finished_session(sender, session_id: int, **kwargs) -> None:
    from .tasks import session_price_task

    transaction.on_commit(lambda: session_price_task.delay(session_id))
