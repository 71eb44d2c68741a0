from django.apps import AppConfig


class RoamingConfig(AppConfig):
    name = "roaming"
    verbose_name = "Roaming (OCPI)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chargers.signals import connector_status_changed

        from . import receivers

        connector_status_changed.connect(
            receivers.connector_status_changed, dispatch_uid="roaming.connector_status_changed"
        )
