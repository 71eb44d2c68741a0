"""Receivers of allauth's signals: they only call services (house style, docs/drivers.md)."""

from __future__ import annotations

from typing import Any


def driver_email_changed(
    sender: Any,
    request: Any,
    user: Any,
    from_email_address: Any,
    to_email_address: Any,
    **kwargs: Any,
) -> None:
    from .services import driver_email_changed as change

    change(
        user_id=user.pk,
        old=from_email_address.email if from_email_address else "",
        new=to_email_address.email,
    )


def driver_signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from .services import driver_sign_in_record

    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        driver_sign_in_record(user_id=user.pk, session_key=session.session_key)


def saved_card_offer(*, user: Any, charger: Any) -> dict | None:
    """The guest landing page asks: may this signed-in person start with a saved card?"""
    from django.urls import reverse

    from .selectors import default_card, profile_of

    profile = profile_of(user)
    if profile is None or not profile.customer_ref:
        return None
    card = default_card(profile)
    if card is None:
        return None
    return {
        "label": f"{card.brand.title()} ending {card.last4}",
        "email": user.email,
        "action": reverse("drivers:start", args=[charger.station_id]),
    }


def receipt_buyer(*, guest_session_id: int) -> tuple[str, str]:
    """Answer guest.receipts.receipt_buyer: the company name and VAT ID of the driver whose
    session it is (their account's business details), else ("", "")."""
    from .models import DriverProfile

    row = (
        DriverProfile.objects.filter(claimed_sessions__guest_session_id=guest_session_id)
        .values_list("company_name", "vat_id")
        .first()
    )
    return (row[0], row[1]) if row is not None else ("", "")


def partner_cdr_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A partner CPO's new CDR of a driver account's token is due: charged after the commit
    (the beat sweep charges one whose task was lost)."""
    if not created:
        return
    from django.db import transaction

    from .roaming import roaming_cdr_due

    cdr_id = instance.pk
    if instance.status == "credit":

        def credit() -> None:
            from .tasks import roaming_credit_task

            try:
                roaming_credit_task.delay(cdr_id)
            except Exception:
                import logging

                logging.getLogger(__name__).exception("Could not queue credit CDR %s", cdr_id)

        transaction.on_commit(credit)
        return
    if roaming_cdr_due(cdr_id=cdr_id):

        def queue() -> None:
            from .tasks import roaming_cdr_charge_task

            try:
                roaming_cdr_charge_task.delay(cdr_id)
            except Exception:  # the sweep charges it
                import logging

                logging.getLogger(__name__).exception("Could not queue charge of CDR %s", cdr_id)

        transaction.on_commit(queue)
