from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.views import revenue
        from chargers.signals import session_finished
        from chargers.web.providers import (
            session_price,
            session_settlement,
            session_settlement_many,
        )

        from . import receivers

        session_finished.connect(
            receivers.price_finished_session, dispatch_uid="billing.price_finished_session"
        )
        revenue.register(receivers.dashboard_revenue)
        session_price.register(receivers.session_price_so_far)
        session_settlement.register(receivers.session_settlement)
        session_settlement_many.register(receivers.session_settlements)
