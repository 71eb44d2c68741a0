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
