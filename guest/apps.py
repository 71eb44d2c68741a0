from django.apps import AppConfig


class GuestConfig(AppConfig):
    name = "guest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the Celery tasks in every process: services queue them by name
        # (guest/schedule.py) and must find them registered.
        from billing.signals import hold_authorized
        from chargers.devices.costs import running_cost, session_tariff, sessions_priced
        from chargers.signals import session_finished, session_started
        from power.signals import allocation_changed

        from . import receipts, receivers, tasks  # noqa: F401

        hold_authorized.connect(receivers.on_hold_authorized, dispatch_uid="guest.hold_authorized")
        session_started.connect(receivers.on_started, dispatch_uid="guest.session_started")
        session_finished.connect(receivers.on_finished, dispatch_uid="guest.session_finished")
        allocation_changed.connect(
            receivers.on_allocation_changed, dispatch_uid="guest.allocation_changed"
        )
        # What a 2.0.1 charger's screen shows is what the receipt will say (docs/ocpp.md).
        running_cost.register(receipts.session_cost_for_charger)
        sessions_priced.register(receipts.sessions_priced_for_charger)
        session_tariff.register(receipts.session_tariff_for_charger)
