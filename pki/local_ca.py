"""Our local V2G certificate hierarchy (ISO 15118-2 §7.9.2: V2G root -> CPO Sub-CA 1 -> CPO
Sub-CA 2 -> the charger's SECC certificate), for test benches and private fleets: cars trust only
the V2G roots their manufacturer installed, so a public network needs a provider's (docs/pki.md).

Keys and certificates are created on first use into OCPP_CA_DIR/v2g (not in git; keys readable by
their owner only), as the CSMS CA is. Everything is ECDSA secp256r1 with SHA-256 (ISO 15118-2
§7.9.2.2). The sub-CAs also answer OCSP for what they issued: a response signed by the issuer
itself (RFC 6960 §2.6, OCPP M06.FR.03), never an answer for a certificate they did not issue.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from django.conf import settings

from pki import chains

LEVELS = ("root", "sub1", "sub2")
ROOT_YEARS, SUB_CA_YEARS = 30, 4
LEAF_DAYS = 365
OCSP_VALID = timedelta(days=7)  # the charger refreshes weekly (M06.FR.10)
MAX_SECC_ID = 64


class CsrRejected(Exception):
    """The V2G CSR cannot be signed; the message says why."""


def _name(common_name: str, organization: str, *, dc: str = "") -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if dc:
        attributes.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc))
    return x509.Name(attributes)


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Level:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


class V2gAuthority:
    """The three CA levels; `sub2` signs the chargers' SECC certificates."""

    def __init__(self, levels: dict[str, Level]):
        self.levels = levels

    @property
    def root(self) -> x509.Certificate:
        return self.levels["root"].certificate

    @property
    def sub_cas(self) -> list[x509.Certificate]:
        """Sub-CA 2 then Sub-CA 1: the chain after a leaf, without the root (M06 remark)."""
        return [self.levels["sub2"].certificate, self.levels["sub1"].certificate]

    @classmethod
    def create(cls, organization: str, now: datetime | None = None) -> V2gAuthority:
        now = now or datetime.now(UTC)
        levels: dict[str, Level] = {}
        issuer: Level | None = None
        for level, path_length, years in (
            ("root", 2, ROOT_YEARS),
            ("sub1", 1, SUB_CA_YEARS),
            ("sub2", 0, SUB_CA_YEARS),
        ):
            key = ec.generate_private_key(ec.SECP256R1())
            names = {"root": "V2G Root CA", "sub1": "CPO Sub-CA 1", "sub2": "CPO Sub-CA 2"}
            subject = _name(f"{organization} {names[level]}", organization, dc="V2G")
            builder = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(issuer.certificate.subject if issuer else subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=365 * years))
                .add_extension(
                    x509.BasicConstraints(ca=True, path_length=path_length), critical=True
                )
                .add_extension(_usage(ca=True), critical=True)
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
            )
            certificate = builder.sign(issuer.key if issuer else key, hashes.SHA256())
            levels[level] = issuer = Level(key, certificate)
        return cls(levels)

    def sign_csr(
        self, csr_pem: str, *, organization: str, now: datetime | None = None
    ) -> list[x509.Certificate]:
        """Return the SECC certificate for a charger's PEM CSR followed by the two sub-CAs."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.strip().encode())
        except ValueError:
            raise CsrRejected("The CSR is not a PEM encoded PKCS#10 request.") from None
        if not csr.is_signature_valid:
            raise CsrRejected("The CSR's signature does not match its public key.")
        public_key = csr.public_key()
        if not (
            isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)
        ):
            raise CsrRejected("A V2G certificate needs a secp256r1 key (ISO 15118-2).")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        secc_id = str(names[0].value) if names else ""
        if not secc_id or len(secc_id) > MAX_SECC_ID:
            raise CsrRejected("The CSR's common name must be the SECC id.")
        now = now or datetime.now(UTC)
        sub2 = self.levels["sub2"]
        not_after = min(now + timedelta(days=LEAF_DAYS), sub2.certificate.not_valid_after_utc)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(_name(secc_id, organization, dc="CPO"))
            .issuer_name(sub2.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(sub2.key.public_key()),
                critical=False,
            )
            .sign(sub2.key, hashes.SHA256())
        )
        return [leaf, *self.sub_cas]

    def ocsp_response(self, cert_id: chains.CertId, now: datetime | None = None) -> bytes | None:
        """A DER OCSP response signed by the issuer, for a sub-CA of ours named by `cert_id`;
        None when `cert_id` names no certificate these CAs issued to one another."""
        now = now or datetime.now(UTC)
        for issuer_level, subject_level in (("root", "sub1"), ("sub1", "sub2")):
            issuer, subject = self.levels[issuer_level], self.levels[subject_level]
            if not chains.issued_by(cert_id, issuer.certificate):
                continue
            if subject.certificate.serial_number != cert_id.serial_number:
                return None
            algorithm = chains.HASHES[cert_id.hash_algorithm]()
            response = (
                ocsp.OCSPResponseBuilder()
                .add_response(
                    cert=subject.certificate,
                    issuer=issuer.certificate,
                    algorithm=algorithm,
                    cert_status=ocsp.OCSPCertStatus.GOOD,
                    this_update=now - timedelta(minutes=1),
                    next_update=now + OCSP_VALID,
                    revocation_time=None,
                    revocation_reason=None,
                )
                .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.certificate)
                .sign(issuer.key, hashes.SHA256())
            )
            return response.public_bytes(serialization.Encoding.DER)
        return None


# -- on disk -----------------------------------------------------------------------------------------

_cache: dict[Path, V2gAuthority] = {}
_lock = threading.Lock()


def directory() -> Path:
    return Path(str(settings.OCPP_CA_DIR)).resolve() / "v2g"


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _read(folder: Path) -> V2gAuthority:
    levels = {}
    for level in LEVELS:
        key = serialization.load_pem_private_key(
            (folder / f"{level}.key").read_bytes(), password=None
        )
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{folder / level}.key is not an EC key")
        certificate = x509.load_pem_x509_certificate((folder / f"{level}.pem").read_bytes())
        levels[level] = Level(key, certificate)
    return V2gAuthority(levels)


def _complete(folder: Path) -> bool:
    return all((folder / f"{level}.{ext}").exists() for level in LEVELS for ext in ("key", "pem"))


def load_or_create(folder: Path, organization: str) -> V2gAuthority:
    """The authority in `folder`, created first if missing (a lock file lets one process write)."""
    if not _complete(folder):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _complete(folder):
                authority = V2gAuthority.create(organization)
                for level, item in authority.levels.items():
                    key = item.key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                    _write(folder / f"{level}.key", key, 0o600)
                    _write(folder / f"{level}.pem", chains.pem(item.certificate).encode(), 0o644)
                return authority
    return _read(folder)


def get_authority() -> V2gAuthority:
    """This process's local V2G authority (created on first use)."""
    folder = directory()
    with _lock:
        authority = _cache.get(folder)
        if authority is None:
            organization = str(getattr(settings, "OCPP_CPO_NAME", "") or "EV Backoffice")
            authority = _cache[folder] = load_or_create(folder, organization)
        return authority
