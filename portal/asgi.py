"""ASGI entry point: HTTP goes to Django, websockets to the OCPP and browser consumers."""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from portal.routing import (  # noqa: E402
    browser_websocket_urlpatterns,
    not_found_websocket_urlpatterns,
    ocpp_websocket_urlpatterns,
)

websocket_application = URLRouter(
    [
        # Chargers send no Origin header and authenticate with Basic auth, so the origin
        # check and the session middleware wrap only the browser-facing sockets.
        *ocpp_websocket_urlpatterns,
        re_path(
            r"^ws/",
            AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(browser_websocket_urlpatterns))
            ),
        ),
        *not_found_websocket_urlpatterns,
    ]
)


async def _publish_pricing() -> None:
    """Sessions stopped in the last moment: their pricing is queued now, not left to the sweep."""
    import asyncio

    from billing.receivers import pricing_batch

    try:
        await asyncio.to_thread(pricing_batch.publish)
    except Exception:
        logging.getLogger("billing").exception(
            "Queueing the last pricing at shutdown failed; the sweep will"
        )


async def lifespan(scope, receive, send):
    """Start: register this server process, clear connections of processes that are gone and
    replay their journals. Stop (SIGTERM included): flush the OCPP message log, then mark this
    process's connections closed (chargers.connections.process)."""
    from chargers.connections import process
    from chargers.connections.consumer import rejoin_command_groups
    from chargers.messagelog.log import writer
    from chargers.plumbing.journal import journal

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await process.start(rejoin=rejoin_command_groups)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await writer.close()
            except Exception:  # never "Application shutdown failed": the rest must still run
                logging.getLogger("chargers.ocpp").exception(
                    "Writing the message log at shutdown failed"
                )
            finally:
                await process.stop()
                journal.close()
                await _publish_pricing()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": websocket_application, "lifespan": lifespan}
)
