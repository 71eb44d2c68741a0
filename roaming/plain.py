"""What went wrong with a roaming partner, in words a host can act on (pure: no Django).

The outbox and the handshake record what failed as "<METHOD> <module>: <cause>" (cause: the
outbound guard's words for an unreachable partner, "HTTP <status>", "OCPI <code>: <message>",
...); the portal and the API show `error_words` of it next to the raw text and status.
"""

from __future__ import annotations

import re

_WHAT = {
    ("PATCH", "locations"): "Sending a charger's status",
    ("PUT", "locations"): "Sending a location",
    ("PUT", "tariffs"): "Sending a price (tariff)",
    ("DELETE", "tariffs"): "Withdrawing a price (tariff)",
    ("PUT", "sessions"): "Sending a session",
    ("POST", "cdrs"): "Sending a charge detail record (CDR)",
    ("POST", "commands"): "Sending the result of a command",
    ("PATCH", "payments"): "Telling it which chargers a payment terminal serves",
    ("POST", "payments"): "Asking it to activate or deactivate a payment terminal",
    ("DELETE", "credentials"): "Unregistering",
    ("PUT", "tokens"): "Sending one of our cards (token)",
    # Not a push: the live check of a card (mod_tokens "POST {uid}/authorize", sent by
    # authorization.services). Its failure is kept on the provider (`live_error`), and the
    # partner page says it through `live_error_words`; nothing waits or is sent again.
    ("POST", "tokens"): "Checking a card live with it (real-time authorization)",
}
_NOT_QUEUED = {("POST", "tokens")}
_PUSH = re.compile(
    r"^(?P<method>GET|PUT|POST|PATCH|DELETE) (?P<module>[a-z]+): (?P<cause>.*)$", re.S
)
_HTTP = re.compile(r"HTTP (?P<status>\d{3})")
_OCPI = re.compile(r"OCPI (?P<code>\d{4}):? ?(?P<message>.*)$", re.S)


def _http_words(status: int) -> str:
    if status in (401, 403):
        return (
            f"it refused our credentials (HTTP {status}): it may have unregistered us; "
            "connect to it again"
        )
    if status == 404:
        return f"the address it gave us for this does not exist on its server (HTTP {status})"
    if status == 405:
        return f"its server does not take this request (HTTP {status})"
    if status == 429:
        return "it asked us to slow down (HTTP 429): we wait before sending it anything again"
    if status >= 500:
        return f"its server failed (HTTP {status})"
    return f"it answered HTTP {status}"


def _ocpi_words(code: int, message: str) -> str:
    said = f": “{message.strip()}”" if message.strip() else ""
    if code == 2001:
        return f"it refused the data as invalid (OCPI 2001){said}"
    if code in (2003, 2004):
        return f"it does not know the object it was about (OCPI {code}){said}"
    if 2000 <= code < 3000:
        return f"it refused the request (OCPI {code}){said}"
    if code == 3002:
        return f"we share no OCPI version with it (OCPI 3002){said}"
    if 3000 <= code < 4000:
        return f"its server had a problem (OCPI {code}){said}"
    return f"its hub could not pass it on (OCPI {code}){said}"


def cause_words(cause: str) -> str:
    """Return a failure's cause in words (what the outbound guard says is already words)."""
    if "not an OCPI response" in cause:
        return "its server answered something that is not OCPI: check the address it gave"
    if "receiver endpoint" in cause:
        return "it gave us no address for this module: ask it to offer it, or connect again"
    ocpi = _OCPI.search(cause)
    if ocpi:
        return _ocpi_words(int(ocpi["code"]), ocpi["message"])
    http = _HTTP.search(cause)
    if http:
        return _http_words(int(http["status"]))
    # The outbound guard's own words ("<url>: it could not be reached: ...") need no URL.
    return cause.split(": ", 1)[1] if cause.startswith(("http://", "https://")) else cause


def live_error_words(live_error: str) -> str:
    """A mobility provider's last refusal of our credentials on a live check of a card (its
    `live_error`), as the partner page says it: built from the HTTP status it answered, never
    from the stored text itself."""
    if not live_error.strip():
        return ""
    http = _HTTP.search(live_error)
    if http is None:
        return f"{_WHAT['POST', 'tokens']} failed: it refused our credentials."
    return error_words(f"POST tokens: HTTP {http['status']}")


def error_words(last_error: str) -> str:
    """Return a partner's last error as a sentence: what we were doing and why it failed, and
    that the push waits and is sent again (nothing is dropped)."""
    text = last_error.strip()
    if not text:
        return ""
    if text.startswith("Registration failed: "):
        cause = cause_words(text[len("Registration failed: ") :])
        return f"Connecting failed: {cause}."
    push = _PUSH.match(text)
    if push is None:
        return cause_words(text).rstrip(".") + "."
    key = (push["method"], push["module"])
    what = _WHAT.get(key, f"{push['method']} {push['module']}")
    cause = cause_words(push["cause"])
    if key in _NOT_QUEUED:
        return f"{what} failed: {cause}."
    return f"{what} failed: {cause}. It waits and is sent again automatically."
