from typing import Any

from django.apps import AppConfig


def _task_succeeded(sender: Any = None, **kwargs: Any) -> None:
    from . import metrics

    if sender is not None:
        metrics.task_succeeded(sender.name)


class BackofficeConfig(AppConfig):
    name = "backoffice"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import task_success

        # A periodic task's last success (backoffice/metrics.py), in a worker, in the
        # in-process beat (task.apply()) and in eager runs alike.
        task_success.connect(_task_succeeded, weak=False, dispatch_uid="evportal-metrics")
        from . import tasks  # noqa: F401  (registers backoffice's task names in every process)
