"""The central system's own certificate authority (OCPP 1.6 security whitepaper §2.6).

Its key and self-signed certificate are generated on first use into OCPP_CA_DIR (default
`var/ca/`, not in git; the key file is readable by its owner only). It signs the CSRs chargers
send with SignCertificate, issues server certificates for the TLS terminator, and verifies the
client certificates of security profile 3 with RFC 5280 path validation (cryptography's
verifier): chain to our CA, validity dates, key usage, and the CN equal to the station id.

Certificates are ECDSA P-256 with SHA-256 (A00.FR.501-506) unless an RSA key is asked for.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from base64 import b64decode
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_to_bytes

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from chargers.security import config as security_config

logger = logging.getLogger("chargers.security")

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
CA_YEARS = 10
# What the CA accepts in a CSR: the key sizes of A00.FR.502/503 that RFC 5280 verifiers
# (and the TLS terminator) handle.
ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CsrRejected(Exception):
    """The CSR cannot be signed; the message says why (SignCertificate is then Rejected)."""


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_pem: str
    chain_pem: str  # leaf then our CA: what CertificateSigned.certificateChain carries
    serial_number: str
    fingerprint_sha256: str
    subject: str
    not_before: datetime
    not_after: datetime


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_usage(
    *,
    signing: bool = True,
    agreement: bool = False,
    encipherment: bool = False,
    cert_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage(public_key: object) -> x509.KeyUsage:
    if isinstance(public_key, rsa.RSAPublicKey):
        return _key_usage(encipherment=True)
    return _key_usage(agreement=True)


def _now() -> datetime:
    return datetime.now(UTC)


class CertificateAuthority:
    def __init__(self, key: PrivateKey, certificate: x509.Certificate):
        self.key = key
        self.certificate = certificate

    @property
    def certificate_pem(self) -> str:
        return cert_pem(self.certificate).decode()

    @classmethod
    def create(
        cls,
        *,
        name: str,
        organization: str,
        key: PrivateKey | None = None,
        now: datetime | None = None,
    ) -> CertificateAuthority:
        key = key or new_key()
        now = now or _now()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def _issue(
        self,
        builder: x509.CertificateBuilder,
        public_key: CertificatePublicKeyTypes,
        now: datetime,
        days: int,
    ) -> x509.Certificate:
        not_after = min(now + timedelta(days=days), self.certificate.not_valid_after_utc)
        return (
            builder.issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(public_key), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )

    def sign_csr(
        self, csr_pem: str, *, station_id: str, days: int = 365, now: datetime | None = None
    ) -> IssuedCertificate:
        """Return a client certificate for `station_id` from a charger's PEM CSR (A02/A03).

        The subject is ours to decide: CN is always the station id (the identity the handshake
        checks, so one charger cannot obtain a certificate naming another) and O is the CSR's
        organization (the CpoName the charger was configured with), or ours if it has none.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem.strip().encode())
        except ValueError:
            raise CsrRejected("The CSR is not a PEM encoded PKCS#10 request.") from None
        if not csr.is_signature_valid:
            raise CsrRejected("The CSR's signature does not match its public key.")
        public_key = csr.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            if public_key.key_size < MIN_RSA_BITS:
                raise CsrRejected(f"RSA keys need at least {MIN_RSA_BITS} bits (A00.FR.502).")
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            if not isinstance(public_key.curve, ALLOWED_CURVES):
                raise CsrRejected("EC keys must use P-256, P-384 or P-521.")
        else:
            raise CsrRejected("Only RSA and EC keys are signed.")
        requested = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if requested != [station_id]:
            logger.info(
                "CSR of %s asked for CN %r; issuing CN=%s", station_id, requested, station_id
            )
        organizations = [
            str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ]
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, station_id),
                x509.NameAttribute(
                    NameOID.ORGANIZATION_NAME,
                    organizations[0] if organizations else self.organization,
                ),
            ]
        )
        now = now or _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        certificate = self._issue(builder, public_key, now, days)
        leaf = cert_pem(certificate).decode()
        return IssuedCertificate(
            certificate_pem=leaf,
            chain_pem=leaf + self.certificate_pem,
            serial_number=format(certificate.serial_number, "x"),
            fingerprint_sha256=fingerprint(certificate),
            subject=certificate.subject.rfc4514_string(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )

    @property
    def organization(self) -> str:
        values = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(values[0].value) if values else security_config.cpo_name()

    def issue_server_certificate(
        self,
        hostnames: list[str],
        *,
        key: PrivateKey | None = None,
        days: int = 90,
        now: datetime | None = None,
    ) -> tuple[PrivateKey, x509.Certificate]:
        """Return a key and TLS server certificate for `hostnames` (CN = the first, A00.FR.510)."""
        import ipaddress

        key = key or new_key()
        names: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0]),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        return key, self._issue(builder, key.public_key(), now or _now(), days)

    def verify_client(
        self, certificate: x509.Certificate, *, station_id: str, now: datetime | None = None
    ) -> str:
        """Return why `certificate` may not authenticate `station_id` ("" when it may).

        RFC 5280 path validation to our CA (A00.FR.403), at `now` (validity dates), with the
        Web PKI key-usage rules, minus the subjectAltName they require of servers: charger
        certificates carry none (A00.FR.511). The CN must be the station id.
        """
        ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )
        verifier = (
            PolicyBuilder()
            .store(Store([self.certificate]))
            .time(now or _now())
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(certificate, [])
        except VerificationError as exc:
            return f"certificate not valid for this central system: {exc}"[:200]
        names = [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [station_id]:
            return f"certificate CN {names!r} is not the station id"[:200]
        return ""


def load_client_certificate(value: bytes) -> x509.Certificate | None:
    """Read the client certificate a TLS proxy forwarded: base64 DER (HAProxy `ssl_c_der,base64`)
    or URL-encoded PEM (nginx `$ssl_client_escaped_cert`). None if it is neither."""
    value = value.strip()
    if not value:
        return None
    try:
        if b"BEGIN" in value or value.startswith(b"%2D") or value.startswith(b"-"):
            return x509.load_pem_x509_certificate(unquote_to_bytes(value))
        return x509.load_der_x509_certificate(b64decode(value, validate=True))
    except ValueError:
        return None


# -- the CA on disk ---------------------------------------------------------------------------------

_cache: dict[Path, CertificateAuthority] = {}
_cache_lock = threading.Lock()


def load_or_create(directory: Path) -> CertificateAuthority:
    """Return the CA in `directory`, generating it first if it does not exist (any process
    may race here: an exclusive lock file lets exactly one of them write)."""
    key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
    if not (key_path.exists() and cert_path.exists()):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (key_path.exists() and cert_path.exists()):
                ca = CertificateAuthority.create(
                    name=f"{security_config.cpo_name()} CSMS CA",
                    organization=security_config.cpo_name(),
                )
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(key_pem(ca.key))
                cert_path.write_bytes(cert_pem(ca.certificate))
                logger.warning("Created the CSMS certificate authority in %s", directory)
                return ca
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{key_path} holds neither an EC nor an RSA key")
    return CertificateAuthority(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))


def get_ca() -> CertificateAuthority:
    """Return this process's CA (from OCPP_CA_DIR; created on first use)."""
    directory = security_config.ca_dir().resolve()
    with _cache_lock:
        ca = _cache.get(directory)
        if ca is None:
            ca = _cache[directory] = load_or_create(directory)
        return ca


def certificate_sha256(pem_or_der: bytes) -> str:
    """Return the SHA-256 fingerprint of a certificate given as PEM or DER."""
    try:
        certificate = x509.load_pem_x509_certificate(pem_or_der)
    except ValueError:
        certificate = x509.load_der_x509_certificate(pem_or_der)
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
