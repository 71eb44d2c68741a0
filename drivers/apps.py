from django.apps import AppConfig


class DriversConfig(AppConfig):
    name = "drivers"
    verbose_name = "Driver accounts"
    default_auto_field = "django.db.models.BigAutoField"
