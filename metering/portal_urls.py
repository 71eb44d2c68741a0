"""Portal URLs of signed metering: a charger's Meter keys tab (mounted at the site root)."""

from django.urls import path

from . import portal

app_name = "meterkeys"

urlpatterns = [
    path(
        "chargers/<str:station_id>/meter-keys/",
        portal.charger_meter_keys,
        name="charger-meter-keys",
    ),
    path(
        "chargers/<str:station_id>/meter-keys/read/",
        portal.charger_meter_keys_read,
        name="charger-meter-keys-read",
    ),
    path(
        "chargers/<str:station_id>/meter-keys/<int:pk>/confirm/",
        portal.charger_meter_key_confirm,
        name="charger-meter-key-confirm",
    ),
    path(
        "chargers/<str:station_id>/meter-keys/<int:pk>/delete/",
        portal.charger_meter_key_delete,
        name="charger-meter-key-delete",
    ),
]
