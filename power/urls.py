"""Portal URLs of site power (mounted at the site root)."""

from django.urls import path

from . import views

app_name = "power"

urlpatterns = [
    path("power/", views.power_overview, name="power-overview"),
    path("locations/<int:pk>/power/", views.location_power, name="location-power"),
    path(
        "locations/<int:pk>/power/reading/",
        views.location_power_reading,
        name="location-power-reading",
    ),
    path("locations/<int:pk>/power/live/", views.location_power_live, name="location-power-live"),
]
