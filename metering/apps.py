from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Signed metering"

    def ready(self) -> None:
        from chargers.signals import session_finished, session_started, signed_values_received
        from chargers.web.providers import signed_meter_values, signed_meter_values_many

        from . import display, receivers

        signed_meter_values.register(display.signed_meter_values)
        signed_meter_values_many.register(display.signed_meter_values_many)

        session_started.connect(receivers.session_signed_check, dispatch_uid="metering.started")
        session_finished.connect(receivers.session_signed_check, dispatch_uid="metering.finished")
        signed_values_received.connect(
            receivers.signed_values_arrived, dispatch_uid="metering.signed_values_received"
        )
