"""OCPI 2.2.1 endpoints (CPO), mounted at /ocpi/."""

from django.urls import path

from . import views

app_name = "roaming"

urlpatterns = [
    path("versions", views.versions, name="versions"),
    path("2.2.1", views.version_details, name="version-details"),
    path("2.2.1/credentials", views.credentials, name="credentials"),
    path("2.2.1/locations", views.locations, name="locations"),
    path("2.2.1/locations/<str:location_id>", views.location_detail, name="location"),
    path("2.2.1/locations/<str:location_id>/<str:evse_uid>", views.location_detail, name="evse"),
    path(
        "2.2.1/locations/<str:location_id>/<str:evse_uid>/<str:connector_id>",
        views.location_detail,
        name="connector",
    ),
    path("2.2.1/tariffs", views.tariffs, name="tariffs"),
    path("2.2.1/tokens", views.tokens_root, name="tokens"),
    path("2.2.1/commands/", views.command, name="commands"),
    path("2.2.1/sessions", views.sessions_list, name="sessions"),
    path("2.2.1/cdrs", views.cdrs_list, name="cdrs"),
    path("2.2.1/commands/<str:command>", views.command, name="command"),
    path(
        "2.2.1/tokens/<str:country_code>/<str:party_id>/<str:token_uid>", views.token, name="token"
    ),
]
