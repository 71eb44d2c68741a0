"""Portal and webhook URLs of stays (mounted at /stays/)."""

from django.urls import path

from . import views

app_name = "stays"

urlpatterns = [
    path("integrations/", views.integration_list, name="integration-list"),
    path("integrations/<int:pk>/sync/", views.integration_sync, name="integration-sync"),
    path("integrations/<int:pk>/listings/<int:listing_id>/unit/", views.listing_unit, name="listing-unit"),
    path("webhooks/<str:key>/", views.webhook, name="webhook"),
]
