"""OCPI 2.2.1 endpoints (CPO), mounted at /ocpi/."""

from django.urls import path

from . import views

app_name = "roaming"

urlpatterns = [
    path("versions", views.versions, name="versions"),
    path("2.2.1", views.version_details, name="version-details"),
    path("2.2.1/credentials", views.credentials, name="credentials"),
]
