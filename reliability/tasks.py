"""Celery tasks of the reliability app (docs/reliability.md)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from chargers.models import Charger, Connector

from .services import timeline

logger = logging.getLogger(__name__)


@shared_task(name="reliability.statuses_record")
def statuses_record_task(ports: list[list[int]]) -> int:
    pairs = [(int(c), int(n)) for c, n in ports]
    recorded = timeline.statuses_record(pairs)
    # A charger that reports statuses is connected: its return (if it was away) is recorded now.
    timeline.links_sync(Charger.objects.filter(pk__in={c for c, _ in pairs}))
    return recorded


@shared_task(name="reliability.session_record")
def session_record_task(session_id: int | list[int]) -> None:
    """One session, or a batch announced together (a restart storm's stops); a session of a
    batch that fails is queued again on its own."""
    if not isinstance(session_id, list):
        timeline.session_record(session_id)
        return
    for one in session_id:
        try:
            timeline.session_record(one)
        except Exception:
            try:  # on its own, with the task's retries (eager without a broker: logged here)
                session_record_task.delay(one)
            except Exception:
                logger.exception("%s failed for session %s", session_record_task.name, one)


@shared_task(name="reliability.sweep")
def sweep_task() -> int:
    """Silence past the missed-heartbeat rule (nothing announces it), and any connection change
    or status a missed announcement left out."""
    now = timezone.now()
    recorded = timeline.links_sync(Charger.objects.filter(property__isnull=False), now)
    recent = Connector.objects.filter(updated_at__gte=now - timedelta(minutes=10))
    recorded += timeline.statuses_record(recent.values_list("charger_id", "connector_id"))
    return recorded


@shared_task(name="reliability.alerts")
def alerts_task() -> int:
    """Open and clear alerts, send what is due, then give first aid where a rule asks for it."""
    from .services import alerts, first_aid, recipients

    now = timezone.now()
    still_open = alerts.evaluate(now)
    # The events go out first: first aid waits for a charger's answer (up to its timeout).
    sent = alerts.deliveries_send()
    recipients.invitations_send()  # confirmation links still to send (docs/reliability.md)
    for alert in still_open:
        first_aid.treat(alert, now)
    return sent
