"""An independent eMSP written from the OCPI 2.2.1 and 2.3.0 texts, for tests over real HTTP.

It imports nothing from the project: it speaks to the CPO only through HTTP, as another
company's platform would. It serves the eMSP side (versions, credentials, locations / sessions
/ cdrs / tariffs receivers, tokens sender with real-time authorization, a commands receiver for
CommandResult) in the versions it is given (2.2.1 by default; `versions=("2.2.1", "2.3.0")`
for a 2.3.0 eMSP), and acts as a client (registration both ways on the newest version both
sides speak, a credentials update to a newer version, GET with pagination).
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


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class EmspStub:
    COUNTRY_CODE = "DE"
    PARTY_ID = "EMS"
    ROLE = "EMSP"
    NAME = "Stub Mobility"

    def __init__(
        self, *, tokens: list[dict] | None = None, versions: tuple[str, ...] = ("2.2.1",)
    ) -> None:
        self.versions = versions
        self.version: str | None = None  # the version agreed with the CPO
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

    def roles(self) -> list[dict]:
        """Our CredentialsRole list (credentials "CredentialsRole class")."""
        return [
            {
                "role": self.ROLE,
                "party_id": self.PARTY_ID,
                "country_code": self.COUNTRY_CODE,
                "business_details": {"name": self.NAME},
            }
        ]

    def our_credentials(self, token: str) -> dict:
        return {"token": token, "url": self.versions_url, "roles": self.roles()}

    # (identifier, role) of our endpoints per version (version_information_endpoint).
    ENDPOINTS = (
        ("credentials", "RECEIVER"),
        ("locations", "RECEIVER"),
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
        ("tariffs", "RECEIVER"),
        ("tokens", "SENDER"),
        ("commands", "SENDER"),
    )

    def endpoints(self, version: str) -> list[dict]:
        return [
            {"identifier": identifier, "role": role, "url": f"{self.base}/{version}/{identifier}"}
            for identifier, role in self.ENDPOINTS
        ]

    def route(self, handler, method: str, path: str, body, presented: str) -> None:
        rel = path[len("/ocpi/emsp") :]
        version, _, module_path = rel.lstrip("/").partition("/")
        if rel == "/versions":
            handler._ok([{"version": v, "url": f"{self.base}/{v}"} for v in self.versions])
        elif version in self.versions and not module_path:
            handler._ok({"version": version, "endpoints": self.endpoints(version)})
        elif version not in self.versions:
            handler._send(
                404, {"status_code": 2000, "status_message": "not found", "timestamp": _now()}
            )
        else:
            self.route_module(handler, method, version, "/" + module_path, body)

    def route_module(self, handler, method: str, version: str, rel: str, body) -> None:
        """Answer a request to one of our modules of `version` (`rel`: "/credentials", ...)."""
        if rel == "/credentials" and method in ("POST", "PUT") and self.refuse_credentials:
            handler._send(
                200, {"status_code": 2001, "status_message": "roles missing", "timestamp": _now()}
            )
        elif rel == "/credentials" and method in ("POST", "PUT"):
            # A CPO registers with us (we are the Receiver of the credentials module), or moves
            # us to this version: check its versions with its token B, then answer our token C.
            token_b = body["token"]
            self.cpo_versions_url = body["url"]
            self.our_token_at_cpo = token_b
            self.fetch_cpo_endpoints(version=version)
            token_c = "stub-token-c-" + secrets.token_hex(8)
            self.cpo_token = token_c
            handler._ok(self.our_credentials(token_c))
        elif rel.startswith("/tokens") and rel.endswith("/authorize") and method == "POST":
            handler._ok(
                {"allowed": self.allowed, "authorization_reference": "AUTH-" + secrets.token_hex(4)}
            )
        elif rel.startswith("/tokens") and method == "GET":
            handler._ok(self.tokens)
        elif method in ("PUT", "PATCH", "POST"):
            handler._ok(status=200)
        else:
            handler._send(
                404, {"status_code": 2000, "status_message": "not found", "timestamp": _now()}
            )

    def requests_to(self, module: str, method: str | None = None) -> list[dict]:
        """Every request the CPO made to our `module` (any version)."""
        with self.lock:
            return [
                r
                for r in self.received
                if r["path"].split("/", 4)[-1].startswith(module)
                and r["path"].split("/")[3] in self.versions
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

    def fetch_cpo_endpoints(self, token: str | None = None, version: str | None = None) -> None:
        """GET the CPO's versions and the details of `version`, or of the newest version both
        of us speak (credentials "Registration")."""
        status, versions, _ = self.request("GET", self.cpo_versions_url, token=token)
        assert status == 200 and versions["status_code"] == 1000, versions
        theirs = {v["version"]: v["url"] for v in versions["data"]}
        common = [v for v in self.versions if v in theirs]
        assert common, f"no common version: {sorted(theirs)}"
        chosen = version or max(common, key=_version_key)
        status, details, _ = self.request("GET", theirs[chosen], token=token)
        assert status == 200 and details["status_code"] == 1000, details
        assert details["data"]["version"] == chosen, details
        self.version = chosen
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

    def update_to_newest(self) -> dict:
        """Move to the newest version both of us speak without registering again: the PUT of
        credentials "Updating to a newer version", with a new token B for the CPO to call us."""
        old_token_b = self.cpo_token
        self.fetch_cpo_endpoints()
        token_b = "stub-token-b2-" + secrets.token_hex(8)
        self.cpo_token = token_b
        url = self.cpo_endpoints[("credentials", "SENDER")]
        status, answer, _ = self.request("PUT", url, self.our_credentials(token_b))
        if status != 200 or answer["status_code"] != 1000:
            self.cpo_token = old_token_b
            raise AssertionError(answer)
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
