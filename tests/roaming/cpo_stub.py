"""An independent CPO written from the OCPI 2.2.1 and 2.3.0 texts, for tests of our eMSP role
over real HTTP.

It imports nothing from the project: it talks to the eMSP only through HTTP, as another
company's platform would. It serves the CPO side (versions, version details, credentials, a
Tokens Receiver keeping what the eMSP pushes) in the versions it is given, and acts as a client
(registration with the eMSP's token A, GET of the eMSP's tokens with pagination, real-time
authorization before it lets a card start).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _auth(token: str) -> str:
    # transport_and_format "Authorization header": Base64 of the UTF-8 token.
    return "Token " + base64.b64encode(token.encode()).decode()


def _token_of(header: str) -> str:
    if not header.startswith("Token "):
        return ""
    raw = header[len("Token ") :]
    try:
        return base64.b64decode(raw, validate=True).decode()
    except ValueError:
        return raw


class CpoStub:
    COUNTRY_CODE = "BE"
    PARTY_ID = "CPX"
    NAME = "Stub Charging"
    # (identifier, role) of our endpoints (version_information_endpoint): what a CPO offers an
    # eMSP. Our Tokens interface is the Receiver (mod_tokens "Receiver Interface").
    ENDPOINTS = (
        ("credentials", "SENDER"),
        ("credentials", "RECEIVER"),
        ("locations", "SENDER"),
        ("tariffs", "SENDER"),
        ("sessions", "SENDER"),
        ("cdrs", "SENDER"),
        ("tokens", "RECEIVER"),
        ("commands", "RECEIVER"),
    )

    # The Sender lists we serve (GET, paginated).
    LISTS = ("locations", "tariffs", "sessions", "cdrs")

    def __init__(
        self, *, versions: tuple[str, ...] = ("2.2.1",), roles: tuple[str, ...] = ("CPO",)
    ):
        self.versions = versions
        self.roles = roles
        self.version: str | None = None
        self.token_a = "cpo-token-a-" + secrets.token_hex(8)
        self.emsp_token: str | None = None  # the token the eMSP calls us with
        self.our_token_at_emsp: str | None = None  # the token we call the eMSP with
        self.emsp_endpoints: dict[tuple[str, str], str] = {}
        self.emsp_roles: list[dict] = []
        # Tokens pushed to our Receiver: (country_code, party_id, uid, type) -> Token object.
        self.tokens: dict[tuple[str, str, str, str], dict] = {}
        # What our Locations and Tariffs Sender interfaces list (mod_locations / mod_tariffs).
        self.locations: list[dict] = []
        self.tariffs: list[dict] = []
        # Its Sessions and CDRs Sender lists (what its pushes carried, for a GET).
        self.sessions: list[dict] = []
        self.cdrs: list[dict] = []
        # A hub's ClientInfo list (mod_hub_client_info Sender), when ENDPOINTS offers it.
        self.client_infos: list[dict] = []
        self.received: list[dict] = []
        # Commands the eMSP sent our Commands Receiver: (command type, body); the answer we give.
        self.commands: list[tuple[str, dict]] = []
        self.command_answer = "ACCEPTED"
        self.down = False
        self.lock = threading.Lock()
        self.token_pushed = threading.Condition(self.lock)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict | list | None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _ok(self, data=None, status_code: int = 1000) -> None:
                body = {"status_code": status_code, "timestamp": _now()}
                if data is not None:
                    body["data"] = data
                self._send(200, body)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = urlparse(self.path)
                routing = {
                    k: self.headers.get(f"OCPI-{k}")
                    for k in (
                        "to-country-code",
                        "to-party-id",
                        "from-country-code",
                        "from-party-id",
                    )
                }
                with stub.lock:
                    stub.received.append(
                        {
                            "method": method,
                            "path": path.path,
                            "query": path.query,
                            "body": body,
                            "routing": routing,
                        }
                    )
                if stub.down:
                    self._send(503, None)
                    return
                token = _token_of(self.headers.get("Authorization", ""))
                if token not in {stub.token_a, stub.emsp_token} - {None}:
                    self._send(401, {"status_code": 2000, "timestamp": _now()})
                    return
                parts = [p for p in path.path.split("/") if p]
                stub.route(self, method, parts, body, parse_qs(path.query))

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
        self.base = f"http://127.0.0.1:{self.server.server_port}/ocpi/cpo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def versions_url(self) -> str:
        return f"{self.base}/versions"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- server side ---------------------------------------------------------------------------

    def our_credentials(self, token: str) -> dict:
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": role,
                    "country_code": self.COUNTRY_CODE,
                    "party_id": self.PARTY_ID,
                    "business_details": {"name": self.NAME},
                }
                for role in self.roles
            ],
        }

    def route(self, handler, method: str, parts: list[str], body, query) -> None:
        # parts: ocpi, cpo, <versions | version>, module, ...
        rest = parts[2:]
        if rest == ["versions"]:
            handler._ok([{"version": v, "url": f"{self.base}/{v}"} for v in self.versions])
            return
        if len(rest) == 1 and rest[0] in self.versions:
            endpoints = [
                {"identifier": i, "role": r, "url": f"{self.base}/{rest[0]}/{i}"}
                for i, r in self.ENDPOINTS
            ]
            handler._ok({"version": rest[0], "endpoints": endpoints})
            return
        if len(rest) == 2 and rest[1] in self.LISTS and method == "GET":
            self._list(handler, rest[0], rest[1], query)
            return
        if len(rest) >= 2 and rest[1] == "credentials" and method == "POST":
            self._credentials_posted(handler, rest[0], body)
            return
        if len(rest) == 5 and rest[1] == "tokens" and method == "PUT":
            # mod_tokens Receiver: {tokens}/{country_code}/{party_id}/{token_uid}[?type=]
            cc, pid, uid = rest[2:5]
            token_type = (query.get("type") or ["RFID"])[0]
            ok = (
                isinstance(body, dict)
                and body.get("uid") == uid
                and body.get("country_code") == cc
                and body.get("party_id") == pid
                and body.get("type") == token_type
            )
            if not ok:
                handler._ok(None, status_code=2001)
                return
            with self.token_pushed:
                self.tokens[(cc, pid, uid, token_type)] = body
                self.token_pushed.notify_all()
            handler._ok()
            return
        if len(rest) == 3 and rest[1] == "commands" and method == "POST":
            # mod_commands Receiver: {commands}/{command}; the CommandResponse answers at once,
            # the CommandResult goes later to the body's response_url (post_result).
            ok = isinstance(body, dict) and isinstance(body.get("response_url"), str)
            if not ok:
                handler._ok(None, status_code=2001)
                return
            with self.token_pushed:
                self.commands.append((rest[2], body))
                self.token_pushed.notify_all()
            handler._ok({"result": self.command_answer, "timeout": 30})
            return
        handler._send(404, {"status_code": 2000, "timestamp": _now()})

    def wait_for_command(self, command: str, *, timeout: float) -> dict:
        """Wait until the eMSP sent `command`; return the newest such body."""
        with self.token_pushed:
            found = self.token_pushed.wait_for(
                lambda: any(c == command for c, _ in self.commands), timeout=timeout
            )
            assert found, f"no {command}; have {self.commands}"
            return [b for c, b in self.commands if c == command][-1]

    def post_result(self, response_url: str, result: str = "ACCEPTED"):
        """POST a CommandResult to the eMSP's response_url: (HTTP status, OCPI body)."""
        status, body, _ = self.request("POST", response_url, {"result": result})
        return status, body

    def _list(self, handler, version: str, module: str, query) -> None:
        """A Sender's paginated GET (transport_and_format "Pagination"): offset, limit, Link."""
        items = {
            "locations": self.locations,
            "tariffs": self.tariffs,
            "sessions": self.sessions,
            "cdrs": self.cdrs,
            "hubclientinfo": self.client_infos,
        }[module]
        since = (query.get("date_from") or [""])[0]
        if since:  # transport_and_format: last_updated from date_from (included)
            items = [i for i in items if str(i.get("last_updated", "")) >= since]
        offset = int((query.get("offset") or ["0"])[0])
        limit = int((query.get("limit") or ["1"])[0])  # small pages: the client must follow Link
        page = items[offset : offset + limit]
        body = json.dumps({"status_code": 1000, "data": page, "timestamp": _now()}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("X-Total-Count", str(len(items)))
        handler.send_header("X-Limit", str(limit))
        if offset + limit < len(items):
            nxt = f"{self.base}/{version}/{module}?offset={offset + limit}&limit={limit}"
            handler.send_header("Link", f'<{nxt}>; rel="next"')
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _credentials_posted(self, handler, version: str, body: dict) -> None:
        """The eMSP registers with us (we gave it token A): fetch its endpoints with its token,
        answer ours with a new token C (credentials "Registration")."""
        their_token = body["token"]
        self.version = version
        self._fetch_emsp_endpoints(body["url"], their_token, version)
        self.our_token_at_emsp = their_token
        self.emsp_roles = body["roles"]
        token_c = "cpo-token-c-" + secrets.token_hex(8)
        self.emsp_token = token_c
        handler._ok(self.our_credentials(token_c))

    # -- client side ---------------------------------------------------------------------------

    def request(self, method: str, url: str, body=None, *, token: str | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", _auth(token or self.our_token_at_emsp or ""))
        req.add_header("X-Request-ID", str(uuid.uuid4()))
        req.add_header("X-Correlation-ID", str(uuid.uuid4()))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                return response.status, json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, (json.loads(raw) if raw else None), exc.headers

    def _fetch_emsp_endpoints(self, versions_url: str, token: str, version: str | None) -> None:
        status, listed, _ = self.request("GET", versions_url, token=token)
        assert status == 200 and listed["status_code"] == 1000, listed
        theirs = {v["version"]: v["url"] for v in listed["data"]}
        chosen = version or max(
            (v for v in theirs if v in self.versions),
            key=lambda v: tuple(int(p) for p in v.split(".")),
        )
        status, details, _ = self.request("GET", theirs[chosen], token=token)
        assert status == 200 and details["status_code"] == 1000, details
        self.version = chosen
        self.emsp_endpoints = {
            (e["identifier"], e["role"]): e["url"] for e in details["data"]["endpoints"]
        }

    def register_with(self, versions_url: str, token_a: str) -> dict:
        """Register with an eMSP that gave us `token_a` (we POST our credentials)."""
        self._fetch_emsp_endpoints(versions_url, token_a, None)
        token_b = "cpo-token-b-" + secrets.token_hex(8)
        self.emsp_token = token_b
        url = self.emsp_endpoints[("credentials", "SENDER")]
        status, answer, _ = self.request("POST", url, self.our_credentials(token_b), token=token_a)
        assert status == 200 and answer["status_code"] == 1000, answer
        self.our_token_at_emsp = answer["data"]["token"]
        self.emsp_roles = answer["data"]["roles"]
        return answer

    def tokens_url(self) -> str:
        return self.emsp_endpoints[("tokens", "SENDER")]

    def get_tokens(self, query: str = "") -> list[dict]:
        """GET every page of the eMSP's tokens, following Link rel="next"."""
        url: str | None = self.tokens_url() + (f"?{query}" if query else "")
        items: list[dict] = []
        while url:
            status, body, headers = self.request("GET", url)
            assert status == 200 and body["status_code"] == 1000, body
            items.extend(body["data"])
            link = headers.get("Link") or ""
            url = link[1 : link.index(">")] if 'rel="next"' in link else None
        return items

    def authorize(self, uid: str, *, token_type: str = "RFID", location: dict | None = None):
        """Real-time authorization (mod_tokens "POST Method"): (HTTP status, OCPI body)."""
        url = f"{self.tokens_url()}/{uid}/authorize?type={token_type}"
        status, body, _ = self.request("POST", url, location)
        return status, body

    def wait_for_token(self, uid: str, *, valid: bool, timeout: float) -> dict:
        """Wait until the eMSP pushed token `uid` in state `valid`; return it."""
        with self.token_pushed:
            found = self.token_pushed.wait_for(
                lambda: any(t["uid"] == uid and t["valid"] is valid for t in self.tokens.values()),
                timeout=timeout,
            )
            assert found, f"token {uid} valid={valid} not pushed; have {self.tokens}"
            return next(t for t in self.tokens.values() if t["uid"] == uid)

    def push(self, method: str, module: str, path: str, body: dict):
        """PUT/PATCH/DELETE to the eMSP's `module` Receiver: (HTTP status, OCPI body)."""
        url = self.emsp_endpoints[(module, "RECEIVER")] + path
        status, answer, _ = self.request(method, url, body)
        return status, answer


class HubStub(CpoStub):
    """An independent hub written from the texts: one registration (its own HUB role, NL*HUB)
    reaching several CPO parties, which it names in its ClientInfo list (mod_hub_client_info
    Sender). It serves their locations and tariffs mixed in one GET ALL, takes tokens and
    commands for them, and records each request's routing headers."""

    COUNTRY_CODE = "NL"
    PARTY_ID = "HUB"
    NAME = "Stub Hub"
    ENDPOINTS = (*CpoStub.ENDPOINTS, ("hubclientinfo", "SENDER"))
    LISTS = ("locations", "tariffs", "sessions", "cdrs", "hubclientinfo")

    def __init__(self, *, versions: tuple[str, ...] = ("2.2.1",)):
        super().__init__(versions=versions, roles=("HUB",))

    def routing_of(self, path_part: str) -> dict:
        """The routing headers of the newest request whose path contains `path_part`."""
        with self.lock:
            return next(r["routing"] for r in reversed(self.received) if path_part in r["path"])
