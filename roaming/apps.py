from django.apps import AppConfig


class RoamingConfig(AppConfig):
    name = "roaming"
    verbose_name = "Roaming (OCPI)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.views import roaming_figures
        from chargers.signals import connector_status_changed, session_finished, session_started

        # Register the Celery tasks in every process: roaming/commands.py queues one by name
        # (roaming/schedule.py) and must find it registered.
        from . import access_points, receivers, tasks  # noqa: F401

        roaming_figures.register(access_points.dashboard_figures)
        from authorization.providers import contract_card, contract_ids, contract_route

        from . import emsp, services

        contract_ids.register(emsp.contract_ids_of)
        contract_card.register(emsp.card_of_contract)
        contract_route.register(services.contract_route)

        connector_status_changed.connect(
            receivers.connector_status_changed, dispatch_uid="roaming.connector_status_changed"
        )
        session_started.connect(receivers.session_started, dispatch_uid="roaming.session_started")
        session_finished.connect(
            receivers.session_finished, dispatch_uid="roaming.session_finished"
        )
        from django.db.models.signals import post_delete, post_save

        from .models import Partner

        post_save.connect(
            receivers.partner_saved, sender=Partner, dispatch_uid="roaming.partner_saved"
        )
        post_delete.connect(
            receivers.partner_saved, sender=Partner, dispatch_uid="roaming.partner_deleted"
        )
        from authorization.models import Token

        post_save.connect(receivers.token_saved, sender=Token, dispatch_uid="roaming.token_saved")
        from billing.models import Rate

        post_save.connect(receivers.rate_saved, sender=Rate, dispatch_uid="roaming.rate_saved")
        post_delete.connect(receivers.rate_saved, sender=Rate, dispatch_uid="roaming.rate_deleted")
