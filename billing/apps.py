from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.views import dashboard_revenue
        from chargers.signals import session_finished, session_price_asked

        from . import receivers

        session_finished.connect(
            receivers.price_finished_session, dispatch_uid="billing.price_finished_session"
        )
        dashboard_revenue.connect(
            receivers.dashboard_revenue, dispatch_uid="billing.dashboard_revenue"
        )
        session_price_asked.connect(
            receivers.session_price_so_far, dispatch_uid="billing.session_price_so_far"
        )
