"""A National Access Point's OCPI 2.2.1 receiver, as NDW's DOT-NL profile describes it, written
from the OCPI 2.2.1 text (mod_locations / mod_tariffs "Receiver Interface"). It imports nothing
from the project: it only sees what arrives over HTTP.

It keeps each Location (PUT, and EVSE PATCHes applied to it) and Tariff (PUT) it is sent, and
records, per object, the AFIR fields DOT-NL makes mandatory that are missing.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

# DOT-NL's profile: these fields are mandatory though OCPI 2.2.1 makes them optional.
LOCATION_FIELDS = ("opening_times", "energy_mix")
EVSE_FIELDS = ("parking_restrictions",)
CONNECTOR_FIELDS = ("max_electric_power", "tariff_ids")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NapStub:
    def __init__(self, *, token: str, port: int = 0) -> None:
        self.token = token
        self.locations: dict[tuple[str, str, str], dict] = {}
        self.tariffs: dict[tuple[str, str, str], dict] = {}
        self.received: list[tuple[str, str, dict]] = []  # (method, path, body)
        self.missing: list[str] = []
        self.refusing = False  # answer 503, as a server that is down for maintenance
        self.lock = threading.Lock()
        self.event = threading.Condition(self.lock)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, http: int, code: int, message: str = "") -> None:
                body = json.dumps(
                    {"status_code": code, "status_message": message, "timestamp": _now()}
                ).encode()
                self.send_response(http)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if stub.refusing:
                    self._answer(503, 3000, "maintenance")
                    return
                expected = "Token " + base64.b64encode(stub.token.encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self._answer(401, 2000, "unknown token")
                    return
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    self._answer(400, 2001, "invalid JSON")
                    return
                parts = urlparse(self.path).path.strip("/").split("/")
                ok = stub.receive(method, parts, body)
                self._answer(200 if ok else 404, 1000 if ok else 2003)

            def do_PUT(self):
                self._handle("PUT")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/2.2.1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _check_location(self, location: dict) -> None:
        where = f"location {location.get('id')}"
        self.missing += [f"{where}: {f}" for f in LOCATION_FIELDS if f not in location]
        for evse in location.get("evses", []):
            self.missing += [f"{where} {evse['uid']}: {f}" for f in EVSE_FIELDS if f not in evse]
            for connector in evse.get("connectors", []):
                self.missing += [
                    f"{where} {evse['uid']}: {f}" for f in CONNECTOR_FIELDS if not connector.get(f)
                ]

    def receive(self, method: str, parts: list[str], body: dict) -> bool:
        # .../locations/{country_code}/{party_id}/{location_id}[/{evse_uid}]
        # .../tariffs/{country_code}/{party_id}/{tariff_id}
        with self.event:
            self.received.append((method, "/".join(parts), body))
            module = next((p for p in parts if p in ("locations", "tariffs")), "")
            rest = parts[parts.index(module) + 1 :] if module else []
            ok = True
            if module == "locations" and method == "PUT" and len(rest) == 3:
                self.locations[tuple(rest)] = body
                self._check_location(body)
            elif module == "locations" and method == "PATCH" and len(rest) == 4:
                location = self.locations.get(tuple(rest[:3]))
                evse = next(
                    (e for e in (location or {}).get("evses", []) if e["uid"] == rest[3]), None
                )
                ok = evse is not None
                if evse is not None:
                    evse.update(body)
            elif module == "tariffs" and method == "PUT" and len(rest) == 3:
                self.tariffs[tuple(rest)] = body
            elif module == "tariffs" and method == "DELETE" and len(rest) == 3:
                ok = self.tariffs.pop(tuple(rest), None) is not None
            else:
                ok = False
            self.event.notify_all()
            return ok

    def evse_status(self, party: tuple[str, str], location_id: str, uid: str) -> str | None:
        with self.lock:
            location = self.locations.get((*party, location_id)) or {}
            evse = next((e for e in location.get("evses", []) if e["uid"] == uid), None)
            return evse["status"] if evse else None
