from django.urls import path

from . import views

app_name = "backoffice"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("members/", views.members, name="members"),
    path("members/<int:pk>/", views.member_change, name="member-change"),
    path(
        "organizations/<int:pk>/energy-reporting/",
        views.organization_energy_reporting,
        name="organization-energy-reporting",
    ),
    path("time-zone/", views.time_zone_choice, name="time-zone"),
]
