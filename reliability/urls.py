from django.urls import path

from . import views

app_name = "reliability"

urlpatterns = [
    path("chargers/<str:station_id>/uptime/", views.charger_uptime, name="charger-uptime"),
]
