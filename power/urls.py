"""Portal URLs of site power (mounted at the site root)."""

from django.urls import path

from . import views

app_name = "power"

urlpatterns = [
    path("locations/<int:pk>/power/", views.location_power, name="location-power"),
    path("locations/<int:pk>/power/live/", views.location_power_live, name="location-power-live"),
]
