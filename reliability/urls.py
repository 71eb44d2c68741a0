from django.urls import path

from .views import alerts, uptime

app_name = "reliability"

urlpatterns = [
    path("uptime/", uptime.fleet_uptime, name="fleet-uptime"),
    path("uptime/alerts/", alerts.alert_rules, name="alert-rules"),
    path("uptime/alerts/<int:pk>/", alerts.alert_rule_edit, name="alert-rule-edit"),
    path("uptime/alerts/<int:pk>/delete/", alerts.alert_rule_remove, name="alert-rule-delete"),
    path("chargers/<str:station_id>/uptime/", uptime.charger_uptime, name="charger-uptime"),
    path(
        "alerts/confirm/<str:key>/",
        uptime.alert_recipient_confirm,
        name="alert-recipient-confirm",
    ),
]
