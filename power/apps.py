from django.apps import AppConfig


class PowerConfig(AppConfig):
    name = "power"
    verbose_name = "Site power"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from . import receivers
        from .checks import lease_outlasts_its_margin

        receivers.connect()
        checks.register(lease_outlasts_its_margin)
