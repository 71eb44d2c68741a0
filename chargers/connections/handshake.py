"""Who may open an OCPP websocket: subprotocol, station id, throttle, security profile, credentials.

The consumer calls `admit(scope, station_id)` before accepting; a refusal carries the HTTP status
the handshake is answered with (ASGI websocket denial response), never a bare close.

Each charger has a security profile (OCPP 1.6 security whitepaper §2): the least a connection
must prove. 1: the right password (HTTP Basic, username = station id) over ws or wss;
2: the same over TLS; 3: a TLS client certificate our CA issued for this station id. A weaker
connection is refused (A00.FR.002); a stronger one is accepted. 0 (set by staff only) accepts
anyone. TLS is terminated in front of the application (deploy/haproxy): the proxy's headers
saying "this came over TLS" and "this was the client certificate" are believed only from the
addresses in OCPP_TRUSTED_PROXIES, and the certificate is verified here again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from dataclasses import dataclass, field

from cryptography import x509
from django.conf import settings

from backoffice import db
from chargers.connections.handshake_guard import guard
from chargers.models import Charger
from chargers.plumbing.failures import FailureLog
from chargers.security import config as security_config
from chargers.security import credentials, pki
from chargers.security import services as security_services
from chargers.state import charger as connection_state

security_log = logging.getLogger("chargers.security")
# A storm's failures of one kind (the database unreachable, the handshake over its time) are
# logged once with a count, not once per charger.
failures = FailureLog(security_log)
RETRY_AFTER = [(b"retry-after", b"30")]

SUBPROTOCOL = "ocpp1.6"
# The websocket subprotocols we speak, most preferred first: a charger offering several gets the
# newest (OCPP-J 2.0.1 part 4 §3.1.2/§3.2: the server picks; we prefer 2.1 > 2.0.1 > 1.6). Each
# maps to the OCPP version stored on the charger.
SUBPROTOCOLS = {"ocpp2.1": "2.1", "ocpp2.0.1": "2.0.1", "ocpp1.6": "1.6"}


def negotiate(offered: list[str]) -> str | None:
    """Return the subprotocol to accept among those `offered`, or None if we speak none of them."""
    return next((name for name in SUBPROTOCOLS if name in offered), None)


# OCPP-J identifierString: printable ASCII without ':' (it would break Basic auth), at most 48.
# Anything else cannot be a charger of ours: refuse with 400 before any lookup.
STATION_ID_RE = re.compile(r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")

# Set by the TLS terminator (deploy/haproxy/ocpp.cfg), believed from trusted proxies only.
CLIENT_ADDRESS_HEADER = b"x-ocpp-client-address"
TLS_HEADER = b"x-ocpp-tls"  # the negotiated protocol, e.g. "TLSv1.3"
ACCEPTED_TLS_VERSIONS = {"TLSv1.2", "TLSv1.3"}  # A00.FR.312/314: nothing older

PROFILE = Charger.SecurityProfile


@dataclass
class Refused(Exception):
    status: int
    reason: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # Complete the handshake (no subprotocol) and close at once, instead of an HTTP status.
    complete_then_close: bool = False


@dataclass(frozen=True)
class ConnectionFacts:
    """What the handshake proves about the transport, wherever TLS was terminated."""

    address: str  # the charger's address: the peer, or what a trusted proxy says it is
    tls: bool
    certificate: x509.Certificate | None = None
    proxy: str = ""  # the trusted proxy the connection came through


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def connection_facts(scope: dict) -> ConnectionFacts:
    """Return the transport facts of this handshake, believing proxy headers only from
    OCPP_TRUSTED_PROXIES (from anyone else they are ignored, so they cannot be forged)."""
    peer = str((scope.get("client") or ("?", 0))[0])
    # uvicorn sets wss itself when it terminates TLS in-process.
    tls = scope.get("scheme") == "wss"
    if not security_config.is_trusted_proxy(peer):
        return ConnectionFacts(address=peer, tls=tls)
    headers = scope.get("headers", [])
    address = (_header(headers, CLIENT_ADDRESS_HEADER) or b"").decode("latin-1").strip() or peer
    version = (_header(headers, TLS_HEADER) or b"").decode("latin-1").strip()
    if version:
        tls = version in ACCEPTED_TLS_VERSIONS
    certificate = None
    raw = _header(headers, security_config.client_cert_header())
    if raw and tls:
        certificate = pki.load_client_certificate(raw)
    return ConnectionFacts(address=address, tls=tls, certificate=certificate, proxy=peer)


def basic_auth(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes] | None:
    """Return (username, password) of an `Authorization: Basic` header, as raw bytes: a 1.6
    AuthorizationKey is binary (OCPP-J 1.6 §6), so nothing is decoded as UTF-8 here."""
    value = _header(headers, b"authorization")
    if value is None:
        return None
    scheme, _, encoded = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, sep, password = decoded.partition(b":")
    return (username, password) if sep else None


def _unauthorized(reason: str = "Authentication required.") -> Refused:
    return Refused(401, reason, [(b"www-authenticate", b'Basic realm="ocpp", charset="UTF-8"')])


async def _password_ok(charger: Charger, scope: dict, station_id: str) -> bool:
    credentials_sent = basic_auth(scope.get("headers", []))
    # A00.FR.204: the username is the station id of the URL.
    if (
        credentials_sent is None
        or credentials_sent[0] != station_id.encode()
        or not charger.ocpp_password_hash
    ):
        return False
    password = credentials_sent[1]
    stored = charger.ocpp_password_hash
    if credentials.is_fast(stored):
        if credentials.verify(stored, password):  # microseconds: no thread hop
            return True
        # Maybe the charger took a new AuthorizationKey whose Accepted never reached us.
        return await db.run(
            security_services.authorization_key_adopt_open, charger_id=charger.pk, password=password
        )
    # A hash of the earlier PBKDF2 scheme (milliseconds): off the event loop, then replaced.
    ok = await asyncio.to_thread(credentials.verify, stored, password)
    if ok:
        try:
            await db.run(
                security_services.charger_password_rehash,
                charger_id=charger.pk,
                old_hash=stored,
                new_hash=credentials.make_hash(password),
            )
        except Exception:
            security_log.exception("Could not upgrade the password hash of %s", station_id)
    return ok


async def _certificate_error(facts: ConnectionFacts, station_id: str) -> str:
    if facts.certificate is None:
        return "no client certificate"
    error = pki.get_ca().verify_client(facts.certificate, station_id=station_id)
    if not error and await db.run(
        security_services.charger_certificate_revoked, pki.fingerprint(facts.certificate)
    ):
        error = "certificate revoked"
    return error


async def proven_profile(
    charger: Charger, scope: dict, facts: ConnectionFacts, station_id: str
) -> tuple[int, str]:
    """Return the highest security profile this connection proves, and why not a higher one."""
    why = ""
    if facts.tls and facts.certificate is not None:
        why = await _certificate_error(facts, station_id)
        if not why:
            return PROFILE.TLS_CLIENT_CERTIFICATE, ""
    if await _password_ok(charger, scope, station_id):
        return (PROFILE.TLS_BASIC_AUTH if facts.tls else PROFILE.BASIC_AUTH), why
    return PROFILE.NONE, why or "wrong or missing password"


def timeout_s() -> float:
    return float(getattr(settings, "OCPP_HANDSHAKE_TIMEOUT_S", 10.0))


# Handshakes being decided in this process, and the event loop that is stopping (`stop`; per
# loop, as tests run many servers in one process).
_deciding: set[asyncio.Task] = set()
_stopping: asyncio.AbstractEventLoop | None = None


def _is_stopping() -> bool:
    return _stopping is not None and _stopping is asyncio.get_running_loop()


def _busy() -> Refused:
    return Refused(503, "Central system busy; retry later.", list(RETRY_AFTER))


async def admit(scope: dict, station_id: str) -> Charger:
    """Return the charger this handshake may connect as, or raise Refused; a handshake that
    cannot be decided within OCPP_HANDSHAKE_TIMEOUT_S, or while the process stops, is refused
    with 503 and Retry-After (a storm parks no handshake for minutes, nor holds up a stop)."""
    task = asyncio.current_task()
    if _is_stopping() or task is None:
        raise _busy()
    _deciding.add(task)
    try:
        async with asyncio.timeout(timeout_s()):
            return await _admit(scope, station_id)
    except TimeoutError:
        failures.failed(
            "handshake timeout",
            "Refused %s: its handshake was not decided within %g s (overloaded?)",
            station_id,
            timeout_s(),
        )
        raise _busy() from None
    except asyncio.CancelledError:
        if not _is_stopping():
            raise
        task.uncancel()  # cancelled by `stop`, not by its caller: answered, not torn down
        raise _busy() from None
    finally:
        _deciding.discard(task)


def stop() -> int:
    """The process stops: handshakes being decided are refused with 503 at once, new ones too.
    Returns how many were waiting."""
    global _stopping
    _stopping = asyncio.get_running_loop()
    waiting = [task for task in _deciding if task.get_loop() is _stopping]
    for task in waiting:
        task.cancel()
    return len(waiting)


async def _admit(scope: dict, station_id: str) -> Charger:
    facts = connection_facts(scope)
    address = facts.address
    if not STATION_ID_RE.match(station_id):
        security_log.warning("Refused malformed station id %r from %s", station_id[:60], address)
        raise Refused(400, "Malformed charge point identity.")
    # Some servers (uvicorn's legacy websockets) report an absent header as [""]: offered nothing.
    offered = [name for name in scope.get("subprotocols", []) if name.strip()]
    if negotiate(offered) is None:
        security_log.warning(
            "Refused %s from %s: no supported subprotocol in %r", station_id, address, offered[:5]
        )
        # OCPP-J 1.6 and 2.0.1 §3.2: a client that offered other subprotocols gets the handshake
        # completed without Sec-WebSocket-Protocol, then an immediate close (MUST). None offered: HTTP 400.
        raise Refused(
            400,
            "Offer the ocpp2.1, ocpp2.0.1 or ocpp1.6 websocket subprotocol.",
            complete_then_close=bool(offered),
        )
    if guard.blocked(address=address, station_id=station_id):
        security_log.warning("Throttled handshake for %r from %s", station_id, address)
        raise Refused(429, "Too many failed attempts; retry later.", [(b"retry-after", b"60")])
    try:
        charger = await connection_state.lookup(station_id)
    except Exception as exc:
        failures.failed(
            f"lookup failed ({type(exc).__name__})",
            "Could not look up station %s (database unavailable?)",
            station_id,
            exc=exc,
        )
        raise Refused(
            503, "Central system temporarily unavailable; retry later.", list(RETRY_AFTER)
        ) from None
    if charger is None:
        guard.failed(address=address, station_id=station_id)
        security_log.warning("Refused unknown station %r from %s", station_id, address)
        raise Refused(404, "Unknown charge point identity.")

    required = charger.security_profile
    if required >= PROFILE.TLS_BASIC_AUTH and not facts.tls:
        # Checked before the password: whatever it is, it must not be accepted in clear.
        await _refuse(
            charger, facts, "SecurityProfileMismatch", f"profile {required} charger without TLS"
        )
        raise Refused(403, f"This charger must connect over TLS (security profile {required}).")
    if required > PROFILE.NONE or charger.security_profile_pending:
        proven, why = await proven_profile(charger, scope, facts, station_id)
    else:
        proven, why = PROFILE.NONE, ""
    if proven < required:
        if required == PROFILE.TLS_CLIENT_CERTIFICATE:
            await _refuse(charger, facts, "InvalidChargePointCertificate", why)
            raise Refused(
                403, "A TLS client certificate issued by this central system is required."
            )
        await _refuse(charger, facts, "InvalidChargePointCredentials", why)
        raise _unauthorized()
    if charger.security_profile_pending and proven >= charger.security_profile_pending:
        # A05.FR.09: the charger reached its new profile; from now on nothing less connects.
        target = charger.security_profile_pending
        await db.run(
            security_services.charger_security_profile_adopt, charger_id=charger.pk, profile=target
        )
        charger.security_profile, charger.security_profile_pending = target, None
        security_log.warning("%s now connects at security profile %s", station_id, target)
    guard.succeeded(station_id=station_id, address=address)
    return charger


async def _refuse(charger: Charger, facts: ConnectionFacts, event_type: str, why: str) -> None:
    """Count the failure, log it, and keep it as a central-system security event (A00.FR.323/408)."""
    guard.failed(address=facts.address, station_id=charger.station_id)
    security_log.warning("Refused %s from %s: %s", charger.station_id, facts.address, why)
    try:
        await db.run(
            security_services.security_event_record_refusal,
            charger_id=charger.pk,
            event_type=event_type,
            tech_info=f"{why} (from {facts.address}{', via ' + facts.proxy if facts.proxy else ''})",
        )
    except Exception:
        security_log.exception("Could not record the refused handshake of %s", charger.station_id)
