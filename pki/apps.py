"""App configuration of pki."""

from django.apps import AppConfig


class PkiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pki"
    verbose_name = "Plug & Charge certificates (roots, providers, OCSP)"
