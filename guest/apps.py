from django.apps import AppConfig


class GuestConfig(AppConfig):
    name = "guest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers

        receivers.connect()
