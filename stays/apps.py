"""App configuration of stays."""

from django.apps import AppConfig


class StaysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "stays"
    verbose_name = "Stays (units, reservations, PMS)"
