"""Portal URLs of firmware campaigns (mounted at /fleet/)."""

from django.urls import path

from . import views

app_name = "fleet"

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/new/", views.campaign_new, name="campaign-new"),
    path("releases/", views.release_list, name="release-list"),
    path("windows/", views.window_list, name="window-list"),
    path("windows/<int:pk>/", views.window_set, name="window-set"),
    path("releases/<int:pk>/<slug:action>/", views.release_action, name="release-action"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:pk>/<slug:action>/", views.campaign_action, name="campaign-action"),
    # Firmware for the chargers (no account: the key in the address; fleet.campaigns.hosting).
    path("firmware/<str:key>/<str:name>", views.firmware_file, name="firmware-file"),
    path("baselines/", views.baseline_list, name="baseline-list"),
    path("baselines/new/", views.baseline_new, name="baseline-new"),
    path("baselines/<int:pk>/", views.baseline_detail, name="baseline-detail"),
    path("baselines/<int:pk>/edit/", views.baseline_edit, name="baseline-edit"),
    path("baselines/<int:pk>/apply/", views.baseline_apply, name="baseline-apply"),
    path(
        "chargers/<str:station_id>/configuration/",
        views.charger_configuration,
        name="charger-configuration",
    ),
    path(
        "chargers/<str:station_id>/configuration/<slug:action>/",
        views.charger_configuration_action,
        name="charger-configuration-action",
    ),
]
