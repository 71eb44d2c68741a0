"""Who may open an OCPP websocket: subprotocol, station id, throttle and credentials.

The consumer calls `admit(scope)` before accepting; a refusal carries the HTTP status the
handshake is answered with (ASGI websocket denial response), never a bare close.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from dataclasses import dataclass, field

from backoffice import db
from chargers import services
from chargers.handshake_guard import guard
from chargers.models import Charger

security_log = logging.getLogger("chargers.security")

SUBPROTOCOL = "ocpp1.6"
# OCPP-J identifierString: printable ASCII without ':' (it would break Basic auth), at most 48.
# Anything else cannot be a charger of ours: refuse with 400 before any lookup.
STATION_ID_RE = re.compile(r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")


@dataclass
class Refused(Exception):
    status: int
    reason: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def basic_auth(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes] | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, encoded = value.partition(b" ")
            if scheme.lower() != b"basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                return None
            username, sep, password = decoded.partition(b":")
            return (username, password) if sep else None
    return None


async def admit(scope: dict, station_id: str) -> Charger:
    """Return the charger this handshake may connect as, or raise Refused."""
    client = scope.get("client") or ("?", 0)
    address = str(client[0])
    if not STATION_ID_RE.match(station_id):
        security_log.warning("Refused malformed station id %r from %s", station_id[:60], address)
        raise Refused(400, "Malformed charge point identity.")
    if SUBPROTOCOL not in scope.get("subprotocols", []):
        security_log.warning("Refused %s from %s: no supported subprotocol", station_id, address)
        raise Refused(400, "Offer the ocpp1.6 websocket subprotocol.")
    if guard.blocked(address=address, station_id=station_id):
        security_log.warning("Throttled handshake for %r from %s", station_id, address)
        raise Refused(429, "Too many failed attempts; retry later.", [(b"retry-after", b"60")])
    try:
        charger = await db.run(services.charger_get_for_connection, station_id)
    except Exception:
        security_log.exception("Could not look up station %s (database unavailable?)", station_id)
        raise Refused(503, "Central system temporarily unavailable; retry later.", [(b"retry-after", b"30")]) from None
    if charger is None:
        guard.failed(address=address, station_id=station_id)
        security_log.warning("Refused unknown station %r from %s", station_id, address)
        raise Refused(404, "Unknown charge point identity.")
    if charger.ocpp_password_hash:
        credentials = basic_auth(scope.get("headers", []))
        ok = False
        if credentials is not None and credentials[0] == station_id.encode():
            try:
                ok = await asyncio.to_thread(charger.check_ocpp_password, credentials[1].decode("utf-8"))
            except UnicodeDecodeError:
                ok = False
        if not ok:
            guard.failed(address=address, station_id=station_id)
            security_log.warning("Refused %s from %s: wrong or missing password", station_id, address)
            raise Refused(401, "Authentication required.", [(b"www-authenticate", b'Basic realm="ocpp"')])
    guard.succeeded(station_id=station_id)
    return charger
