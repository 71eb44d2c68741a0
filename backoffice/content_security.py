"""Content-Security-Policy middleware: django-csp's, plus websocket URLs of the request's own host.

CSP Level 3 lets 'self' match ws:/wss: on the same host, but older browsers (Safari before
15.4 among them) do not, and the live log and the guest live page connect over websockets.
So connect-src also names ws://<host> and wss://<host> of this request, never a wildcard.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class SelfWebsocketCSPMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        update = dict(parts.update or {})
        sockets = [f"ws://{host}", f"wss://{host}"]
        existing = update.get("connect-src")
        update["connect-src"] = [*existing, *sockets] if existing else sockets
        parts.update = update
        return parts
