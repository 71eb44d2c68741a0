from django.urls import path

from . import alert_views, views

app_name = "reliability"

urlpatterns = [
    path("uptime/", views.fleet_uptime, name="fleet-uptime"),
    path("uptime/alerts/", alert_views.alert_rules, name="alert-rules"),
    path("uptime/alerts/<int:pk>/", alert_views.alert_rule_edit, name="alert-rule-edit"),
    path("uptime/alerts/<int:pk>/delete/", alert_views.alert_rule_remove, name="alert-rule-delete"),
    path("chargers/<str:station_id>/uptime/", views.charger_uptime, name="charger-uptime"),
    path(
        "alerts/confirm/<str:key>/",
        views.alert_recipient_confirm,
        name="alert-recipient-confirm",
    ),
]
