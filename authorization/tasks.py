"""Celery tasks: pull MSP token lists so known roaming cards keep working when an MSP is slow."""

import httpx
from celery import shared_task

from .models import MobilityServiceProvider
from .services import MspListUnreadable, msp_tokens_pull


@shared_task(
    name="authorization.msp_tokens_pull",
    autoretry_for=(httpx.HTTPError, MspListUnreadable),
    retry_backoff=30,
    retry_backoff_max=900,
    max_retries=5,
)
def msp_tokens_pull_task(msp_id: int) -> int:
    msp = MobilityServiceProvider.objects.filter(pk=msp_id).first()
    return msp_tokens_pull(msp=msp) if msp else 0


@shared_task(name="authorization.msp_tokens_pull_all")
def msp_tokens_pull_all_task() -> int:
    ids = list(
        MobilityServiceProvider.objects.exclude(live_validation_url="")
        .exclude(via_hub=True)  # routed parties' cards come with the hub's pushes
        .values_list("pk", flat=True)
    )
    for msp_id in ids:
        msp_tokens_pull_task.delay(msp_id)
    return len(ids)
