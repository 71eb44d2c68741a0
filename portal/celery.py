"""Celery application. Without REDIS_URL / CELERY_BROKER_URL tasks run in-process (eager)."""

import logging
import os
import time
from typing import Any

from celery import Celery, Task
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

logger = logging.getLogger(__name__)

# After the broker fails a send, every send of this process fails at once for this long: each
# would otherwise wait the broker's socket timeout again (CELERY_BROKER_SOCKET_TIMEOUT_S), and a
# charger's StopTransaction, whose receivers queue several tasks, waited that many times over
# for its answer while the broker hung. The callers keep the job (backoffice.queueing) or leave
# it to their sweep, as for any failed send.
BROKER_PAUSE_S = 10.0
_paused_until = 0.0


class BrokerPaused(OperationalError):
    """Not sent: the broker failed a send less than BROKER_PAUSE_S ago."""


def broker_pause_forget() -> None:
    """Send again at once (the broker is known to be back; tests)."""
    global _paused_until
    _paused_until = 0.0


class PausingTask(Task):
    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        global _paused_until
        if self.app.conf.task_always_eager:
            return super().apply_async(args, kwargs, **options)
        if time.monotonic() < _paused_until:
            raise BrokerPaused(f"{self.name} not sent: the broker failed a send just before")
        try:
            return super().apply_async(args, kwargs, **options)
        except (OperationalError, RedisError, OSError) as exc:
            _paused_until = time.monotonic() + BROKER_PAUSE_S
            logger.warning("The broker failed a send (%s): sends pause %g s", exc, BROKER_PAUSE_S)
            raise


app = Celery("portal", task_cls=PausingTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
