from django.apps import AppConfig


class ChargersConfig(AppConfig):
    name = "chargers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the token-group receiver and the local list Celery task, and the receiver that
        # marks a reservation used by the session that starts on it (with no HTTP request yet,
        # nothing else imports chargers.sessions.reservations in an OCPP process).
        # The dashboard (backoffice, below this app) shows these parts.
        from backoffice import views as dashboard
        from chargers.devices import local_list  # noqa: F401
        from chargers.sessions import reservations  # noqa: F401
        from chargers.web import security_views, views

        dashboard.charger_figures.register(views.dashboard_charger_figures)
        dashboard.security_figures.register(security_views.dashboard_security_figures)
        # GET /metrics (backoffice/metrics.py): the connected chargers, the message-log buffer
        # and the journal of this process.
        from backoffice import metrics
        from chargers.connections import sampling

        metrics.add_sampler(sampling.sample)
