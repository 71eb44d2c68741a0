"""Websocket routes: OCPP for chargers, live views for browsers (under /ws/)."""

from django.urls import path, re_path

from chargers.connections.consumer import NotFoundConsumer, OcppConsumer
from chargers.web.sockets import ChargerLogConsumer
from guest.consumers import GuestSessionConsumer

ocpp_websocket_urlpatterns = [
    re_path(r"^ocpp/(?P<station_id>[^/]+)/?$", OcppConsumer.as_asgi()),
]

browser_websocket_urlpatterns = [
    path("chargers/<str:station_id>/logs/", ChargerLogConsumer.as_asgi()),
    path("guest/<str:key>/", GuestSessionConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),  # any other /ws/ path: 404, not a server error
]

# Last in the outer router: a websocket path no route matches gets 404 at the handshake.
not_found_websocket_urlpatterns = [re_path(r"", NotFoundConsumer.as_asgi())]
