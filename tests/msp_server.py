"""A small real OCPI tokens endpoint for tests: answers real-time authorization and token pulls."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeMsp:
    def __init__(
        self, *, allowed: str = "ALLOWED", delay: float = 0.0, tokens: list[dict] | None = None
    ):
        self.allowed = allowed
        self.delay = delay
        self.tokens = tokens or []
        self.raw_get: bytes | None = None  # set: every GET answers these bytes (a broken list)
        self.requests: list[dict] = []
        self.answered = 0  # real-time authorizations answered so far (after the delay)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, body: dict):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up (timeout)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                url = urlparse(self.path)
                outer.requests.append(
                    {
                        "method": "POST",
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "auth": self.headers.get("Authorization"),
                        "body": body,
                    }
                )
                if outer.delay:
                    time.sleep(outer.delay)
                outer.answered += 1
                self._reply(
                    {
                        "status_code": 1000,
                        "data": {"allowed": outer.allowed, "authorization_reference": "REF-1"},
                    }
                )

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                outer.requests.append(
                    {
                        "method": "GET",
                        "path": url.path,
                        "query": query,
                        "auth": self.headers.get("Authorization"),
                    }
                )
                if outer.raw_get is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(outer.raw_get)))
                    self.end_headers()
                    self.wfile.write(outer.raw_get)
                    return
                offset = int(query.get("offset", ["0"])[0])
                limit = int(query.get("limit", ["50"])[0])
                self._reply({"status_code": 1000, "data": outer.tokens[offset : offset + limit]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/2.2.1/tokens"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
