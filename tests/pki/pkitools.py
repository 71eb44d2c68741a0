"""Certificate hierarchies made in the test (V2G root -> sub-CAs -> charger leaf; MO root ->
sub-CA -> contract leaf with an eMAID) and a real OCSP responder: an HTTP server on a port of this
worker's block that answers RFC 6960 requests with responses signed by the issuer's key."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

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
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                responder.requests.append(body)
                payload = responder.answer(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
