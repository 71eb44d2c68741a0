from django.apps import AppConfig


class PowerConfig(AppConfig):
    name = "power"
    verbose_name = "Site power"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers

        receivers.connect()
