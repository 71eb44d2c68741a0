"""Portal and webhook URLs of stays (mounted at /stays/)."""

from django.urls import path

from . import views

app_name = "stays"

urlpatterns = [
    path("properties/", views.stay_settings, name="stay-settings"),
    path("properties/<int:pk>/policy/", views.policy_update, name="policy-update"),
    path("properties/<int:pk>/calendars/", views.calendar_add, name="calendar-add"),
    path("calendars/<int:pk>/sync/", views.calendar_sync, name="calendar-sync"),
    path("calendars/<int:pk>/remove/", views.calendar_remove, name="calendar-remove"),
    path("integrations/", views.integration_list, name="integration-list"),
    path("integrations/<int:pk>/", views.integration_detail, name="integration-detail"),
    path("integrations/add/", views.integration_add, name="integration-add"),
    path(
        "integrations/<int:pk>/credentials/",
        views.integration_credentials,
        name="integration-credentials",
    ),
    path("integrations/<int:pk>/sync/", views.integration_sync, name="integration-sync"),
    path("integrations/<int:pk>/remove/", views.integration_remove, name="integration-remove"),
    path(
        "integrations/<int:pk>/listings/<int:listing_id>/unit/",
        views.listing_unit,
        name="listing-unit",
    ),
    path("webhooks/<str:key>/", views.webhook, name="webhook"),
]
