"""Celery tasks: take ids, call one service. Retries are the outbox's (roaming.services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from . import (
    access_points,
    client,
    commands,
    emsp,
    emsp_cdrs,
    emsp_network,
    payments,
    schedule,
    services,
    sessions,
)
from .models import SweepMark

# roaming.location_push and roaming.deliveries_send are defined next to what enqueues them
# (services.location_push_task, services.deliveries_send_task).
deliveries_send_task = services.deliveries_send_task
access_point_full_sync_task = access_points.full_sync_task

STATUS_MARK = "roaming:status-sweep-mark"
EMSP_TOKENS_MARK = "roaming:emsp-tokens-sweep-mark"
EMSP_SESSIONS_MARK = "roaming:emsp-sessions-sweep-mark"
# The sweeps' marks are rows (SweepMark), not cache keys: a Redis that lost them made the next
# sweep look back only its default, and an EVSE status (a card) changed before was never pushed.


def _mark(name: str) -> datetime | None:
    """Where the sweep `name` last looked from, or None (it never ran)."""
    return SweepMark.objects.filter(name=name).values_list("at", flat=True).first()


def _mark_set(name: str, at: datetime) -> None:
    SweepMark.objects.update_or_create(name=name, defaults={"at": at})


@shared_task(name="roaming.evse_status_push")
def evse_status_push_task(connectors: list[list[int]]) -> int:
    """Queue new EVSE statuses for their operators' partners and send them at once."""
    partner_ids: set[int] = set()
    for charger_id, connector_id in connectors:
        partner_ids.update(
            services.evse_status_queue(charger_id=charger_id, connector_id=connector_id)
        )
    for partner_id in sorted(partner_ids):
        services.deliveries_send(partner_id=partner_id)
    return len(partner_ids)


@shared_task(name="roaming.evse_status_sweep")
def evse_status_sweep_task() -> int:
    """Periodic: push EVSE statuses that changed since the last sweep (a missed signal, a charger
    that connected or disconnected). Overlapping windows are harmless: an EVSE whose status a
    partner already has is not queued again."""
    now = timezone.now()
    # A first run ever looks at every connector (a status a partner has is not queued again).
    since = _mark(STATUS_MARK) or datetime.min.replace(tzinfo=UTC) + timedelta(seconds=5)
    pairs = services.evse_status_changes_since(since - timedelta(seconds=5))
    _mark_set(STATUS_MARK, now)
    return evse_status_push_task([list(pair) for pair in pairs]) if pairs else 0


@shared_task(name="roaming.deliveries_sweep")
def deliveries_sweep_task() -> int:
    """Periodic: send what waited (back-off over, partner back)."""
    partner_ids = services.partners_with_due_deliveries()
    for partner_id in partner_ids:
        deliveries_send_task.delay(partner_id)
    return len(partner_ids)


@shared_task(name=schedule.COMMAND_EXECUTE)
def command_execute_task(remote_command_id: int) -> str:
    """Send a partner's command to the charger, then its CommandResult to the partner."""
    return commands.command_execute(remote_command_id=remote_command_id)


def _send(partner_ids: set[int]) -> None:
    for partner_id in sorted(partner_ids):
        services.deliveries_send(partner_id=partner_id)


@shared_task(name="roaming.session_started")
def session_started_task(session_id: int) -> int:
    """Push a new roaming session to its partner."""
    partner_id = sessions.session_push_queue(session_id=session_id)
    _send({partner_id} if partner_id else set())
    return 1 if partner_id else 0


@shared_task(name="roaming.session_finished")
def session_finished_task(session_id: int) -> int:
    """Push a finished roaming session's final state, then its CDR (a terminal's one-off card is
    made unusable first)."""
    payments.terminal_session_finished(session_id=session_id)
    partner_id = sessions.session_push_queue(session_id=session_id)
    cdr = sessions.cdr_create(session_id=session_id)
    partner_ids = {p for p in (partner_id, cdr.partner_id if cdr else None) if p}
    _send(partner_ids)
    return len(partner_ids)


@shared_task(name="roaming.sessions_sweep")
def sessions_sweep_task() -> int:
    """Periodic: progress of running roaming sessions, and CDRs whose signal was missed; the
    one-off cards of terminal starts that never became a session are made unusable."""
    payments.stale_cards_release()
    partner_ids = sessions.sessions_sweep()
    for partner_id in sorted(partner_ids):
        deliveries_send_task.delay(partner_id)
    return len(partner_ids)


@shared_task(name="roaming.log_cleanup")
def log_cleanup_task() -> int:
    """Periodic: the OCPI log keeps OCPP_LOG_RETENTION_DAYS, like the OCPP message log."""
    return services.log_cleanup()


@shared_task(name="roaming.access_points_freshness")
def access_points_freshness_task() -> int:
    """Periodic: a national access point's feed behind its bound opens an alert (its rules)."""
    opened, _cleared = access_points.freshness_alerts()
    return opened


@shared_task(name="roaming.locations_reconcile")
def locations_reconcile_task() -> int:
    """Periodic: EVSEs no longer published become REMOVED at partners, new ones are PUT."""
    from .models import Partner

    queued = 0
    for partner_id in Partner.objects.filter(state=Partner.State.CONNECTED).values_list(
        "pk", flat=True
    ):
        count = services.locations_reconcile(partner_id=partner_id)
        count += services.tariffs_reconcile(partner_id=partner_id)
        if count:
            queued += count
            deliveries_send_task.delay(partner_id)
    return queued


@shared_task(name=schedule.LOCATIONS_RESEND)
def locations_resend_task(partner_id: int) -> int:
    """Every location again, in the partner's version (it moved to another one); send at once."""
    queued = services.locations_resend(partner_id=partner_id)
    if queued:
        services.deliveries_send(partner_id=partner_id)
    return queued


@shared_task(name="roaming.rate_changed")
def rate_changed_task(rate_id: int, property_id: int) -> int:
    """PUT a changed rate's Tariff to the national access points of its operator, then the
    location (its connectors' tariff_ids) to every partner; send at once."""
    partner_ids = set(access_points.rate_push_queue(rate_id=rate_id, property_id=property_id))
    partner_ids |= set(services.location_push_queue(property_id=property_id))
    _send(partner_ids)
    return len(partner_ids)


# -- our eMSP role: our cards to partner CPOs --------------------------------------------------


@shared_task(
    name=schedule.EMSP_TOKEN_PUSH,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=8,
)
def emsp_token_push_task(token_id: int) -> int:
    """Queue our card's state for its organization's CPO partners and send it at once (a failed
    send waits in the outbox with back-off; the deliveries sweep retries it)."""
    partner_ids = emsp.token_push_queue(token_id=token_id)
    for partner_id in partner_ids:
        services.deliveries_send(partner_id=partner_id)
    return len(partner_ids)


@shared_task(
    name=schedule.EMSP_TOKENS_PUSH_ALL,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=8,
)
def emsp_tokens_push_all_task(partner_id: int) -> int:
    """Queue every card of the partner's organization for a (new) CPO partner, and send."""
    queued = emsp.tokens_push_all(partner_id=partner_id)
    if queued:
        services.deliveries_send(partner_id=partner_id)
    return queued


@shared_task(name="roaming.emsp_tokens_sweep")
def emsp_tokens_sweep_task() -> int:
    """Periodic: push cards changed (or whose expiry passed) since the last sweep. A card whose
    state a CPO already has is queued again harmlessly (the PUT is idempotent, coalesced)."""
    now = timezone.now()
    since = _mark(EMSP_TOKENS_MARK) or now - timedelta(minutes=10)
    token_ids = emsp.cards_changed_since(since - timedelta(seconds=5), now=now)
    _mark_set(EMSP_TOKENS_MARK, now)
    for token_id in token_ids:
        emsp_token_push_task(token_id)
    return len(token_ids)


@shared_task(name=schedule.EMSP_NETWORK_PULL)
def emsp_network_pull_task(partner_id: int) -> list[int]:
    """Pull a CPO partner's locations and tariffs (a partner down is tried again by the sweep)."""
    try:
        return list(emsp_network.network_pull(partner_id=partner_id))
    except client.PartnerCallError:
        return [0, 0]


@shared_task(name="roaming.emsp_sessions_sweep")
def emsp_sessions_sweep_task() -> int:
    """Periodic: GET every CPO partner's Sessions and CDRs changed since the last sweep (with
    overlap), so a lost push still reaches the driver's page and the bill."""
    now = timezone.now()
    pulled = 0
    for partner_id in emsp.cpo_partner_ids():
        mark = f"{EMSP_SESSIONS_MARK}:{partner_id}"
        since = _mark(mark) or now - timedelta(days=1)
        try:
            emsp_cdrs.sessions_cdrs_pull(partner_id=partner_id, since=since - timedelta(minutes=1))
        except client.PartnerCallError:
            continue  # the next sweep asks again from the same mark
        _mark_set(mark, now)
        pulled += 1
    # Asked first: a session still open and silent for a day is closed on our side.
    emsp_cdrs.sessions_quiet_close(now=now)
    return pulled


@shared_task(name="roaming.emsp_network_sweep")
def emsp_network_sweep_task() -> int:
    """Periodic: pull every CPO partner's locations and tariffs again (what a push missed)."""
    partner_ids = emsp.cpo_partner_ids()
    for partner_id in partner_ids:
        emsp_network_pull_task.delay(partner_id)
    return len(partner_ids)
