from django.apps import AppConfig


class ChargersConfig(AppConfig):
    name = "chargers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the token-group receiver and the local list Celery task.
        from . import local_list  # noqa: F401
