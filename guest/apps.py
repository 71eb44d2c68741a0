from django.apps import AppConfig


class GuestConfig(AppConfig):
    name = "guest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the Celery tasks in every process: services queue them by name
        # (guest/schedule.py) and must find them registered.
        from chargers.devices.costs import running_cost, session_priced, session_tariff

        from . import receipts, receivers, tasks  # noqa: F401

        receivers.connect()
        # What a 2.0.1 charger's screen shows is what the receipt will say (docs/ocpp.md).
        running_cost.register(receipts.session_cost_for_charger)
        session_priced.register(receipts.session_priced_for_charger)
        session_tariff.register(receipts.session_tariff_for_charger)
