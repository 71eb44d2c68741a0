"""Certificate hierarchies made in the test (V2G root -> sub-CAs -> charger leaf; MO root ->
sub-CA -> contract leaf with an eMAID) and a real OCSP responder: an HTTP server on a port of this
worker's block that answers RFC 6960 requests with responses signed by the issuer's key."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from pki import services
from tests.conftest import free_port


@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test PKI"),
        ]
    )


def issue(
    cn: str,
    issuer: Ca | None,
    *,
    ca: bool,
    ocsp_url: str = "",
    key: ec.EllipticCurvePrivateKey | None = None,
    not_after: datetime | None = None,
) -> Ca:
    """A certificate for `cn` signed by `issuer` (self-signed when None)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.certificate.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not ca,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(ocsp_url),
                    )
                ]
            ),
            critical=False,
        )
    signer = issuer.key if issuer else key
    return Ca(key, builder.sign(signer, hashes.SHA256()))


def csr(cn: str, key: ec.EllipticCurvePrivateKey | None = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


def ocpp_hash_data(certificate: x509.Certificate, issuer: x509.Certificate, url: str) -> dict:
    """OCPP OCSPRequestDataType for `certificate`, as a charger computes it."""
    request = (
        ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": request.issuer_name_hash.hex(),
        "issuerKeyHash": request.issuer_key_hash.hex(),
        "serialNumber": format(certificate.serial_number, "x"),
        "responderURL": url,
    }


@dataclass
class Responder:
    """An OCSP responder for the CAs it is given; `revoked` serials answer revoked."""

    issuers: list[Ca]
    revoked: set[int] = field(default_factory=set)
    requests: list[bytes] = field(default_factory=list)
    port: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocsp"

    def answer(self, der: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(der)
        for issuer in self.issuers:
            digest = hashlib.new(request.hash_algorithm.name)
            digest.update(issuer.certificate.subject.public_bytes())
            name_hash = digest.digest()
            point = issuer.certificate.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            key_hash = hashlib.new(request.hash_algorithm.name, point).digest()
            if (name_hash, key_hash) != (request.issuer_name_hash, request.issuer_key_hash):
                continue
            now = datetime.now(UTC)
            revoked = request.serial_number in self.revoked
            builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=request.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
                this_update=now - timedelta(minutes=1),
                next_update=now + timedelta(days=7),
                revocation_time=now - timedelta(days=1) if revoked else None,
                revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
            )
            response = builder.responder_id(
                ocsp.OCSPResponderEncoding.HASH, issuer.certificate
            ).sign(issuer.key, hashes.SHA256())
            return response.public_bytes(serialization.Encoding.DER)
        return ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.UNAUTHORIZED
        ).public_bytes(serialization.Encoding.DER)

    def start(self) -> Responder:
        def answer(_path: str, body: bytes, _headers: dict) -> tuple[str, bytes]:
            self.requests.append(body)
            return "application/ocsp-response", self.answer(body)

        self.server, self.port = serve_posts(answer)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Provider:
    """A JSON HTTP stub standing for a PKI provider (a fixed EXI stream) or an OCPI tokens
    endpoint (a fixed authorization answer): keeps the bodies, paths and headers it was sent."""

    def __init__(self, answer: dict) -> None:
        self.answer = answer
        self.bodies: list[dict] = []
        self.headers: list[dict] = []

        def reply(path: str, body: bytes, headers: dict) -> tuple[str, bytes]:
            self.bodies.append({"path": path, **json.loads(body)})
            self.headers.append(headers)
            return "application/json", json.dumps(self.answer).encode()

        self.server, self.port = serve_posts(reply)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_posts(
    reply: Callable[[str, bytes, dict], tuple[str, bytes]],
) -> tuple[ThreadingHTTPServer, int]:
    """Serve POSTs on a free local port, each answered 200 with `reply(path, body, headers)`'s
    (content type, payload); return the server (stop it with shutdown) and its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            content_type, payload = reply(self.path, body, dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


EMAID = "DE-8EO-C12345678-9"


class World:
    """An MO hierarchy with a contract for EMAID and a V2G hierarchy, answered by one responder."""

    def __init__(self) -> None:
        self.responder = Responder([]).start()
        url = self.responder.url
        self.mo_root = issue("MO Root", None, ca=True)
        self.mo_sub = issue("MO Sub-CA", self.mo_root, ca=True, ocsp_url=url)
        self.contract = issue(EMAID, self.mo_sub, ca=False, ocsp_url=url)
        self.v2g_root = issue("V2G Root", None, ca=True)
        self.v2g_sub1 = issue("CPO Sub-CA 1", self.v2g_root, ca=True, ocsp_url=url)
        self.v2g_sub2 = issue("CPO Sub-CA 2", self.v2g_sub1, ca=True, ocsp_url=url)
        self.responder.issuers = [self.mo_root, self.mo_sub, self.v2g_root, self.v2g_sub1]

    @property
    def contract_chain(self) -> str:
        return self.contract.pem + self.mo_sub.pem


def install_root(organization_id: int, use: str, ca: Ca) -> None:
    services.root_add(organization_id=organization_id, use=use, certificate_pem=ca.pem)
