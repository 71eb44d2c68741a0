from django.apps import AppConfig


class ReliabilityConfig(AppConfig):
    name = "reliability"
    verbose_name = "Reliability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from backoffice.views import reliability_figures
        from chargers.models import ChargerEvent
        from chargers.signals import (
            connection_changed,
            connector_status_changed,
            session_finished,
            session_started,
        )
        from chargers.web.providers import port_faults

        from . import faults, receivers
        from .services import alerts

        connector_status_changed.connect(
            receivers.statuses_changed, dispatch_uid="reliability.statuses"
        )
        session_started.connect(
            receivers.session_changed, dispatch_uid="reliability.session_started"
        )
        session_finished.connect(
            receivers.session_changed, dispatch_uid="reliability.session_finished"
        )
        connection_changed.connect(
            receivers.connections_changed, dispatch_uid="reliability.connections"
        )
        post_save.connect(
            receivers.charger_event_saved, sender=ChargerEvent, dispatch_uid="reliability.event"
        )
        reliability_figures.register(alerts.dashboard_figures)
        port_faults.register(faults.port_faults)
