"""Sending again what the mail server (or another outside service) did not take, once each.

A sweep finds the rows whose `<field>` (when it was sent) is empty and sends each: claimed
first (the field set), so that a second sweep at once (a redelivered task, two workers) sends
nothing twice, and unclaimed when the send did not go out, so that a later sweep tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django.db.models import Model


def send_each_once(
    model: type[Model],
    ids: Iterable[int],
    *,
    field: str,
    now: datetime,
    send: Callable[[int], bool],
) -> int:
    """Send each row of `ids` whose `field` is still empty; how many went out."""
    sent = 0
    for pk in list(ids):
        unsent = model._default_manager.filter(pk=pk, **{f"{field}__isnull": True})
        if not unsent.update(**{field: now}):
            continue  # another sweep has it
        if send(pk):
            sent += 1
        else:
            model._default_manager.filter(pk=pk).update(**{field: None})
    return sent
