from django.apps import AppConfig


class PowerConfig(AppConfig):
    name = "power"
    verbose_name = "Site power"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from chargers.devices import ev_needs
        from chargers.signals import session_finished, session_started

        from . import receivers
        from .checks import lease_outlasts_its_margin
        from .selectors import session_limit_a

        session_started.connect(receivers.session_changed, dispatch_uid="power.session_started")
        session_finished.connect(receivers.session_changed, dispatch_uid="power.session_finished")
        ev_needs.session_power_limit.register(session_limit_a)
        checks.register(lease_outlasts_its_margin)
