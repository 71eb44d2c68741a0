from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The audit log (django-auditlog) of what support agents change, with who did it and the
        # values before/after: tickets and their emails, and the rows the toolkit's actions write.
        from auditlog.registry import auditlog
        from django.apps import apps

        from backoffice.views import support_figures
        from billing.signals import refund_booked, settlement_held
        from chargers.signals import session_without_energy_reading

        from . import receivers

        support_figures.register(receivers.dashboard_support_figures)
        session_without_energy_reading.connect(
            receivers.flag_no_energy_reading, dispatch_uid="support.flag_no_energy_reading"
        )
        settlement_held.connect(
            receivers.flag_settlement_held, dispatch_uid="support.flag_settlement_held"
        )
        refund_booked.connect(
            receivers.confirm_ticket_refund, dispatch_uid="support.confirm_ticket_refund"
        )

        for label, options in (
            ("support.Ticket", {}),
            ("support.TicketMessage", {}),
            ("support.VendorErrorCode", {}),
            ("billing.Refund", {}),
            ("billing.Payment", {}),
            ("authorization.Token", {}),
            ("authorization.TokenGroup", {"m2m_fields": {"tokens"}}),
            ("chargers.Command", {}),
            ("auth.User", {"include_fields": ["username", "email", "is_active", "is_staff"]}),
        ):
            model = apps.get_model(label)
            if not auditlog.contains(model):
                auditlog.register(model, **options)
