from django.apps import AppConfig


class ReliabilityConfig(AppConfig):
    name = "reliability"
    verbose_name = "Reliability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.views import reliability_figures
        from chargers.web.providers import port_faults

        from . import alerts, faults, receivers

        receivers.connect()
        reliability_figures.register(alerts.dashboard_figures)
        port_faults.register(faults.port_faults)
