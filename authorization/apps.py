from django.apps import AppConfig


class AuthorizationConfig(AppConfig):
    name = "authorization"
    default_auto_field = "django.db.models.BigAutoField"
