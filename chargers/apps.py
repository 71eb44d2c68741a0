from django.apps import AppConfig


class ChargersConfig(AppConfig):
    name = "chargers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the token-group receiver and the local list Celery task, and the receiver that
        # marks a reservation used by the session that starts on it (with no HTTP request yet,
        # nothing else imports chargers.reservations in an OCPP process).
        from . import local_list, reservations  # noqa: F401
