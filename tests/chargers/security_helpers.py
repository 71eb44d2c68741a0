"""Shared by the security tests: handshakes with chosen address/headers, and certificates."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from channels.testing import WebsocketCommunicator
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargers.security import pki
from portal.asgi import application

PASSWORD = "0123456789abcdef0123456789abcdef01234567"  # 40 hex digits, like a generated one
PROXY = "10.9.8.7"


def basic(station_id: str, password: bytes | str) -> tuple[bytes, bytes]:
    raw = password if isinstance(password, bytes) else password.encode()
    return (b"authorization", b"Basic " + base64.b64encode(station_id.encode() + b":" + raw))


def scope(station_id: str, *, address: str = "203.0.113.10", headers=(), password=None) -> dict:
    """The ASGI scope of an OCPP handshake, for chargers.connections.handshake.admit()."""
    headers = list(headers)
    if password is not None:
        headers.append(basic(station_id, password))
    return {
        "type": "websocket",
        "path": f"/ocpp/{station_id}",
        "headers": headers,
        "subprotocols": ["ocpp1.6"],
        "client": (address, 40000),
        "scheme": "ws",
    }


def via_proxy(
    certificate: x509.Certificate | None = None,
    *,
    tls: str = "TLSv1.3",
    client: str = "198.51.100.20",
) -> list[tuple[bytes, bytes]]:
    """Headers the shipped HAProxy config adds (deploy/haproxy/ocpp.cfg)."""
    headers = [(b"x-ocpp-client-address", client.encode()), (b"x-ocpp-tls", tls.encode())]
    if certificate is not None:
        der = certificate.public_bytes(serialization.Encoding.DER)
        headers.append((b"x-ssl-client-cert", base64.b64encode(der)))
    return headers


def communicator(
    station_id: str, *, address: str = "203.0.113.10", headers=(), password=None
) -> WebsocketCommunicator:
    """A websocket client whose handshake refusals come back as HTTP statuses."""
    c = WebsocketCommunicator(
        application, f"/ocpp/{station_id}", headers=[], subprotocols=["ocpp1.6"]
    )
    c.scope.update(scope(station_id, address=address, headers=headers, password=password))
    c.scope["extensions"] = {"websocket.http.response": {}}
    return c


async def handshake_status(c: WebsocketCommunicator) -> int:
    """Return 101 when the socket was accepted, else the HTTP status of the refusal."""
    await c.send_input({"type": "websocket.connect"})
    message = await c.receive_output(5)
    if message["type"] == "websocket.accept":
        return 101
    assert message["type"] == "websocket.http.response.start", message
    return message["status"]


def csr_for(
    common_name: str, key=None, organization: str = "Test CPO"
) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                ]
            )
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def client_certificate(ca: pki.CertificateAuthority, station_id: str, **kwargs) -> x509.Certificate:
    """A client certificate `ca` issued for `station_id` through the CSR path."""
    csr, _ = csr_for(station_id)
    issued = ca.sign_csr(csr, station_id=station_id, **kwargs)
    return x509.load_pem_x509_certificate(issued.certificate_pem.encode())


def foreign_ca() -> pki.CertificateAuthority:
    return pki.CertificateAuthority.create(name="Somebody else's CA", organization="Test CPO")


def long_ago() -> datetime:
    return datetime.now(UTC) - timedelta(days=800)
