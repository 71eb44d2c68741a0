"""Celery tasks: thin wrappers around services (eager, in-process, without a broker)."""

import logging

from celery import shared_task

from . import schedule

logger = logging.getLogger(__name__)


@shared_task(
    name="billing.session_price", autoretry_for=(Exception,), retry_backoff=True, max_retries=5
)
def session_price_task(session_id: int) -> None:
    from .services.refunds import overcharges_refund
    from .services.sessions import session_price

    session_price(session_id=session_id)
    overcharges_refund([session_id])  # priced again lower than what was charged


@shared_task(name="billing.sessions_price")
def sessions_price_task(session_ids: list[int]) -> int:
    from .services.refunds import overcharges_refund
    from .services.sessions import sessions_price

    priced = sessions_price(session_ids)
    overcharges_refund(session_ids)  # priced again lower than what was charged
    return priced


@shared_task(name="billing.sessions_price_missing")
def sessions_price_missing_task() -> int:
    from .services.settlement import sessions_price_missing

    return sessions_price_missing()


@shared_task(name="billing.payouts_reconcile_processor")
def payouts_reconcile_processor_task() -> int:
    """Reconcile every organization's payouts with its Stripe payouts (beat, daily; docs/billing.md)."""
    from .connect import payouts_reconcile_with_processor
    from .gateways import StripeGateway, get_gateway
    from .models import BillingSettings

    if not isinstance(get_gateway(), StripeGateway):
        return 0  # the sandbox pays nothing out
    ids = BillingSettings.objects.exclude(payout_account_id="").values_list(
        "organization_id", flat=True
    )
    for organization_id in ids:
        payouts_reconcile_with_processor(organization_id=organization_id)
    return len(ids)


@shared_task(name="billing.refunds_unanswered_settle")
def refunds_unanswered_settle_task() -> int:
    """Book the refunds whose answer from the processor was lost, once it answers (docs/billing.md)."""
    from .services.refunds import refunds_unanswered_settle

    return refunds_unanswered_settle()


@shared_task(name="billing.webhook_events_backfill")
def webhook_events_backfill_task() -> dict[str, int]:
    """Apply the processor's events we never received (docs/billing.md, "Webhooks")."""
    from .webhooks import backfill

    return backfill()


@shared_task(name="billing.payouts_run")
def payouts_run_task() -> list[int]:
    """The hourly payout run (beat `billing-payouts`). Before it, what the processor did that we
    never heard of is brought in: refunds whose answer was lost, and events never delivered
    (both are deducted from or added to what is paid out). Their own tasks above run them alone;
    a failure of either never keeps the payouts from running."""
    from .services.payouts import payouts_run

    for catch_up in (refunds_unanswered_settle_task, webhook_events_backfill_task):
        try:
            catch_up()
        except Exception:
            logger.exception("%s before the payout run failed", catch_up.name)
    return [payout.pk for payout in payouts_run()]


@shared_task(name=schedule.RECONCILIATION_IMPORT)
def reconciliation_import_task(reconciliation_id: int) -> None:
    from .services.reconciliation import reconciliation_run

    reconciliation_run(reconciliation_id=reconciliation_id)


@shared_task(name=schedule.STATEMENT_GENERATE)
def statement_generate_task(job_id: int) -> None:
    from .statements import statement_generate

    statement_generate(job_id=job_id)


@shared_task(name="billing.subscriptions_collect")
def subscriptions_collect_task() -> dict[str, int]:
    from .services.subscriptions import subscriptions_collect

    return subscriptions_collect()


@shared_task(name="billing.exchange_rates_fetch")
def exchange_rates_fetch_task() -> int:
    """Periodic: the ECB's newest reference rates (a bill in another currency states one)."""
    from .services.exchange_rates import RatesUnavailable, exchange_rates_fetch

    try:
        return exchange_rates_fetch()
    except RatesUnavailable as exc:
        logger.warning("Exchange rates not fetched: %s", exc)
        return 0


@shared_task(name="billing.reports_send")
def reports_send_task() -> int:
    """Email each organization's scheduled report (uptime, KPIs, revenue as CSV) once a period."""
    from .scheduled_reports import reports_send

    return reports_send()
