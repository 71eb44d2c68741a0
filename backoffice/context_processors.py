from django.conf import settings


def portal(request) -> dict:
    return {"SITE_NAME": getattr(settings, "SITE_NAME", "EV Backoffice")}
