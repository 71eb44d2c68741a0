"""An independent eMSP written from the OCPI 2.2.1 text, for tests over real HTTP.

It imports nothing from the project: it speaks to the CPO only through HTTP, as another
company's platform would. It serves the eMSP side (versions, credentials, locations / sessions
/ cdrs receivers, tokens sender with real-time authorization, a commands receiver for
CommandResult) and acts as a client (registration both ways, GET with pagination).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _auth(token: str) -> str:
    # transport_and_format "Authorization header": Base64 of the UTF-8 token.
    return "Token " + base64.b64encode(token.encode()).decode()


class OcpiHttpError(Exception):
    def __init__(self, status: int, body: dict | None):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class EmspStub:
    COUNTRY_CODE = "DE"
    PARTY_ID = "EMS"

    def __init__(self, *, tokens: list[dict] | None = None) -> None:
        self.token_a = "stub-token-a-" + secrets.token_hex(
            8
        )  # what we give a CPO to register with us
        self.cpo_token: str | None = None  # the token the CPO calls us with (B or C)
        self.our_token_at_cpo: str | None = None  # the token we call the CPO with
        self.cpo_versions_url: str | None = None
        self.cpo_endpoints: dict[tuple[str, str], str] = {}
        self.tokens = tokens or []
        self.allowed = "ALLOWED"
        self.down = False
        self.refuse_credentials = False  # answer a credentials POST with an OCPI client error
        self.received: list[dict] = []  # every request the CPO made to us, with arrival time
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(
                self, status: int, body: dict | list | None, headers: dict | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if self.headers.get("X-Request-ID"):
                    self.send_header("X-Request-ID", self.headers["X-Request-ID"])
                self.send_header(
                    "X-Correlation-ID", self.headers.get("X-Correlation-ID") or str(uuid.uuid4())
                )
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _ok(self, data=None, status: int = 200) -> None:
                body = {"status_code": 1000, "timestamp": _now()}
                if data is not None:
                    body["data"] = data
                self._send(status, body)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                url = urlparse(self.path)
                record = {
                    "method": method,
                    "path": url.path,
                    "query": url.query,
                    "body": body,
                    "headers": dict(self.headers.items()),
                    "at": time.monotonic(),
                }
                if stub.down:
                    self._send(
                        503, {"status_code": 3000, "status_message": "down", "timestamp": _now()}
                    )
                    return
                presented = self.headers.get("Authorization", "")
                accepted = {t for t in (stub.token_a, stub.cpo_token) if t}
                if not any(presented == _auth(t) for t in accepted):
                    self._send(
                        401,
                        {
                            "status_code": 2000,
                            "status_message": "Unauthorized",
                            "timestamp": _now(),
                        },
                    )
                    return
                with stub.lock:
                    stub.received.append(record)
                stub.route(self, method, url.path, body, presented)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/emsp"
        self.versions_url = f"{self.base}/versions"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- our server side -------------------------------------------------------------------

    def our_credentials(self, token: str) -> dict:
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": self.PARTY_ID,
                    "country_code": self.COUNTRY_CODE,
                    "business_details": {"name": "Stub Mobility"},
                }
            ],
        }

    def route(self, handler, method: str, path: str, body, presented: str) -> None:
        rel = path[len("/ocpi/emsp") :]
        if rel == "/versions":
            handler._ok([{"version": "2.2.1", "url": f"{self.base}/2.2.1"}])
        elif rel == "/2.2.1":
            endpoints = [
                {
                    "identifier": "credentials",
                    "role": "RECEIVER",
                    "url": f"{self.base}/2.2.1/credentials",
                },
                {
                    "identifier": "locations",
                    "role": "RECEIVER",
                    "url": f"{self.base}/2.2.1/locations",
                },
                {
                    "identifier": "sessions",
                    "role": "RECEIVER",
                    "url": f"{self.base}/2.2.1/sessions",
                },
                {"identifier": "cdrs", "role": "RECEIVER", "url": f"{self.base}/2.2.1/cdrs"},
                {"identifier": "tariffs", "role": "RECEIVER", "url": f"{self.base}/2.2.1/tariffs"},
                {"identifier": "tokens", "role": "SENDER", "url": f"{self.base}/2.2.1/tokens"},
                {"identifier": "commands", "role": "SENDER", "url": f"{self.base}/2.2.1/commands"},
            ]
            handler._ok({"version": "2.2.1", "endpoints": endpoints})
        elif rel == "/2.2.1/credentials" and method in ("POST", "PUT") and self.refuse_credentials:
            handler._send(
                200, {"status_code": 2001, "status_message": "roles missing", "timestamp": _now()}
            )
        elif rel == "/2.2.1/credentials" and method in ("POST", "PUT"):
            # A CPO registers with us (we are the Receiver of the credentials module): check its
            # versions with its token B, then answer our token C.
            token_b = body["token"]
            self.cpo_versions_url = body["url"]
            self.our_token_at_cpo = token_b
            self.fetch_cpo_endpoints()
            token_c = "stub-token-c-" + secrets.token_hex(8)
            self.cpo_token = token_c
            handler._ok(self.our_credentials(token_c))
        elif rel.startswith("/2.2.1/tokens") and rel.endswith("/authorize") and method == "POST":
            handler._ok(
                {"allowed": self.allowed, "authorization_reference": "AUTH-" + secrets.token_hex(4)}
            )
        elif rel.startswith("/2.2.1/tokens") and method == "GET":
            handler._ok(self.tokens)
        elif method in ("PUT", "PATCH", "POST") and rel.startswith("/2.2.1/"):
            handler._ok(status=200)
        else:
            handler._send(
                404, {"status_code": 2000, "status_message": "not found", "timestamp": _now()}
            )

    def requests_to(self, module: str, method: str | None = None) -> list[dict]:
        with self.lock:
            return [
                r
                for r in self.received
                if r["path"].startswith(f"/ocpi/emsp/2.2.1/{module}")
                and (method is None or r["method"] == method)
            ]

    # -- our client side -------------------------------------------------------------------

    def request(
        self, method: str, url: str, body=None, token: str | None = None
    ) -> tuple[int, dict, Message]:
        """Return (HTTP status, body, headers); header names are case-insensitive (RFC 9110)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", _auth(token or self.our_token_at_cpo or ""))
        req.add_header("X-Request-ID", str(uuid.uuid4()))
        req.add_header("X-Correlation-ID", str(uuid.uuid4()))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null"), resp.headers
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"raw": raw.decode(errors="replace")}
            return exc.code, payload, exc.headers

    def fetch_cpo_endpoints(self, token: str | None = None) -> None:
        status, versions, _ = self.request("GET", self.cpo_versions_url, token=token)
        assert status == 200 and versions["status_code"] == 1000, versions
        url = next(v["url"] for v in versions["data"] if v["version"] == "2.2.1")
        status, details, _ = self.request("GET", url, token=token)
        assert status == 200 and details["status_code"] == 1000, details
        self.cpo_endpoints = {
            (e["identifier"], e["role"]): e["url"] for e in details["data"]["endpoints"]
        }

    def register_with(self, versions_url: str, token_a: str) -> dict:
        """Register with a CPO that gave us `token_a` (we are the Sender of credentials)."""
        self.cpo_versions_url = versions_url
        self.fetch_cpo_endpoints(token=token_a)
        token_b = "stub-token-b-" + secrets.token_hex(8)
        self.cpo_token = token_b  # the CPO may call us with it while handling our POST
        url = self.cpo_endpoints[("credentials", "SENDER")]
        status, answer, _ = self.request("POST", url, self.our_credentials(token_b), token=token_a)
        assert status == 200 and answer["status_code"] == 1000, answer
        self.our_token_at_cpo = answer["data"]["token"]
        return answer

    def get_all(
        self, module: str, *, limit: int | None = None, query: str = ""
    ) -> tuple[list, list[Message]]:
        """GET every page of a CPO sender list, following Link rel="next"; return (items, page headers)."""
        url = self.cpo_endpoints[(module, "SENDER")]
        params = [p for p in (query, f"limit={limit}" if limit else "") if p]
        if params:
            url += "?" + "&".join(params)
        items: list = []
        headers_seen: list[Message] = []
        while url:
            status, body, headers = self.request("GET", url)
            assert status == 200 and body["status_code"] == 1000, body
            items.extend(body["data"])
            headers_seen.append(headers)
            link = headers.get("Link", "")
            url = link[1 : link.index(">")] if 'rel="next"' in link else ""
        return items, headers_seen
