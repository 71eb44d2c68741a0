"""Celery tasks of driver accounts: take ids, call one service."""

from __future__ import annotations

from celery import shared_task

from . import roaming


@shared_task(name="drivers.roaming_cdr_charge")
def roaming_cdr_charge_task(cdr_id: int) -> str:
    """Charge one partner CDR of a driver to their saved card (the sweep retries)."""
    return roaming.roaming_cdr_charge(cdr_id=cdr_id).payment_status


@shared_task(name="drivers.roaming_charges_collect")
def roaming_charges_collect_task() -> int:
    """Periodic: charge every partner CDR still due (lost, unanswered or refused attempts)."""
    return roaming.roaming_charges_collect()


@shared_task(name="drivers.roaming_credit")
def roaming_credit_task(cdr_id: int) -> str:
    """A partner's credit CDR: the CDR it names is not charged, or the driver is refunded."""
    credited = roaming.roaming_credit(cdr_id=cdr_id)
    return credited.payment_status if credited is not None else ""
