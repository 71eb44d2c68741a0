from django.apps import AppConfig


class ReliabilityConfig(AppConfig):
    name = "reliability"
    verbose_name = "Reliability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.views import reliability_figures

        from . import alerts, receivers

        receivers.connect()
        reliability_figures.register(alerts.dashboard_figures)
