"""The chargers' V2G certificates watched (issue 52, docs/pki.md): a charger whose newest V2G
certificate expires within V2G_RENEW_DAYS (7) is asked for a new one with
TriggerMessage(SignV2GCertificate) (A02), at most once a day; its SignCertificate is then signed
as any (chargers.handlers.v201_pnc). The warning before that is the host's
"Certificate expiring" alert rule (reliability), which looks at each type's newest certificate.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.db.models import Max
from django.utils import timezone

from chargers.devices import commands
from chargers.models import Charger, ChargerCertificate, Command

logger = logging.getLogger(__name__)

V2G_RENEW_DAYS = 7
ASK_AGAIN_AFTER = timedelta(days=1)
TRIGGER = {"requestedMessage": "SignV2GCertificate"}


def chargers_due(*, now: datetime, limit: int = 200) -> list[Charger]:
    """2.0.1 chargers whose newest V2G certificate expires within V2G_RENEW_DAYS and that were
    not asked in the last day."""
    newest = (
        ChargerCertificate.objects.filter(
            certificate_type="V2GCertificate", revoked_at__isnull=True
        )
        .values("charger_id")
        .annotate(until=Max("not_after"))
        .filter(until__lte=now + timedelta(days=V2G_RENEW_DAYS))
        .values_list("charger_id", flat=True)
    )
    asked = Command.objects.filter(
        action="TriggerMessage",
        payload=TRIGGER,
        created_at__gte=now - ASK_AGAIN_AFTER,
    ).values_list("charger_id", flat=True)
    return list(
        Charger.objects.filter(pk__in=newest, ocpp_version=Charger.OcppVersion.V201)
        .exclude(pk__in=asked)
        .order_by("pk")[:limit]
    )


def renewal_ask(charger: Charger) -> str:
    """Ask one charger for a new V2G certificate; return what became of it."""
    try:
        command = commands.send_command_sync(charger, "TriggerMessage", TRIGGER, source="csms")
    except commands.ChargerOffline:
        return "offline"
    except commands.CommandTimeout:
        return "timeout"
    return str(command.result_status or command.get_status_display())


@shared_task(name="chargers.v2g_certificates_renew")
def v2g_certificates_renew_task() -> dict[str, int]:
    counts: dict[str, int] = {}
    for charger in chargers_due(now=timezone.now()):
        outcome = renewal_ask(charger)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
