from django.apps import AppConfig


class DriversConfig(AppConfig):
    name = "drivers"
    verbose_name = "Driver accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import email_changed
        from django.contrib.auth.signals import user_logged_in

        from . import receivers

        email_changed.connect(receivers.driver_email_changed, dispatch_uid="drivers.email_changed")
        user_logged_in.connect(receivers.driver_signed_in, dispatch_uid="drivers.signed_in")
        from guest.views.pages import saved_card_offer

        saved_card_offer.register(receivers.saved_card_offer)
        from guest.receipts import receipt_buyer

        receipt_buyer.register(receivers.receipt_buyer)
        from django.db.models.signals import post_save

        from roaming.models import PartnerCdr

        post_save.connect(
            receivers.partner_cdr_saved, sender=PartnerCdr, dispatch_uid="drivers.partner_cdr"
        )
