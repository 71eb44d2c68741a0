"""Websocket routes: OCPP for chargers, live views for browsers (under /ws/)."""

from django.urls import path, re_path

from chargers.consumers import ChargerLogConsumer, OcppConsumer
from guest.consumers import GuestSessionConsumer

ocpp_websocket_urlpatterns = [
    re_path(r"^ocpp/(?P<station_id>[^/]+)/?$", OcppConsumer.as_asgi()),
]

browser_websocket_urlpatterns = [
    path("chargers/<str:station_id>/logs/", ChargerLogConsumer.as_asgi()),
    path("guest/<str:key>/", GuestSessionConsumer.as_asgi()),
]
