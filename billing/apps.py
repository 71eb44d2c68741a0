from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.views import revenue
        from chargers.devices.costs import tariff_text
        from chargers.signals import session_finished, session_started
        from chargers.web.providers import (
            money_round,
            session_price,
            session_prices,
            session_settlement,
            session_settlement_many,
        )

        # Register the Celery tasks in every process: services queue them by name
        # (billing/schedule.py) and must find them registered.
        from . import receivers, tasks  # noqa: F401
        from .gateways import sandbox_gateway
        from .money import round_money
        from .sandbox import SandboxGateway
        from .session_costs import sessions_price_so_far

        session_finished.connect(
            receivers.price_finished_session, dispatch_uid="billing.price_finished_session"
        )
        session_started.connect(
            receivers.price_version_at_start, dispatch_uid="billing.price_version_at_start"
        )
        revenue.register(receivers.dashboard_revenue)
        session_price.register(receivers.session_price_so_far)
        session_prices.register(sessions_price_so_far)
        session_settlement.register(receivers.session_settlement)
        session_settlement_many.register(receivers.session_settlements)
        money_round.register(round_money)
        tariff_text.register(receivers.tariff_text_for_charger)
        sandbox_gateway.register(SandboxGateway)
