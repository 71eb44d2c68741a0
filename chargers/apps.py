from django.apps import AppConfig


class ChargersConfig(AppConfig):
    name = "chargers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the token-group receiver and the local list Celery task, and the receiver that
        # marks a reservation used by the session that starts on it (with no HTTP request yet,
        # nothing else imports chargers.devices.reservations in an OCPP process).
        # The dashboard (backoffice, below this app) shows these parts.
        from backoffice import views as dashboard
        from chargers.devices import local_list, reservations  # noqa: F401
        from chargers.security import views as security_views
        from chargers.web import views

        dashboard.charger_figures.register(views.dashboard_charger_figures)
        dashboard.security_figures.register(security_views.dashboard_security_figures)
