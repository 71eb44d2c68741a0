"""X.509 for Plug & Charge, pure (no Django): a certificate chain checked against a set of roots
(RFC 5280 path validation by cryptography's verifier), OCSP requests (RFC 6960) and the checks
an OCSP responder's answer must pass before anyone relies on it or passes it on.

ISO 15118 certificates carry no Web PKI extensions (no subjectAltName, no extended key usage),
so the verifier runs with the permissive extension policies: signatures, validity dates, issuer
names, basic constraints and path lengths are still checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

# OCPP HashAlgorithmEnumType -> the hash it names.
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
# What a responder's clock may differ from ours (RFC 6960 §4.2.2.1 leaves it to the client).
CLOCK_SKEW = timedelta(minutes=5)


class OcspRefused(Exception):
    """An OCSP answer that cannot be relied on; the message says why (never passed on)."""


def load_pem_chain(text: str) -> list[x509.Certificate]:
    """Return the certificates of a PEM text, leaf first; raise ValueError if there is none."""
    certificates = x509.load_pem_x509_certificates(text.strip().encode())
    if not certificates:
        raise ValueError("no certificate")
    return certificates


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def normalized(identifier: str) -> str:
    """An eMAID or card UID compared without case and separators (as tokens are matched)."""
    return "".join(ch for ch in identifier.strip().upper() if ch not in ": -")


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def expired(certificates: list[x509.Certificate], now: datetime) -> bool:
    """Whether any of `certificates` is outside its validity period at `now`."""
    return any(not (c.not_valid_before_utc <= now <= c.not_valid_after_utc) for c in certificates)


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    """Return the path from `leaf` to one of `roots` (leaf first, root last) at `now`; raise
    VerificationError if there is none."""
    if not roots:
        raise VerificationError("no root certificate installed")
    verifier = (
        PolicyBuilder()
        .store(Store(roots))
        .time(now)
        .extension_policies(
            ca_policy=ExtensionPolicy.permit_all().require_present(
                x509.BasicConstraints, Criticality.CRITICAL, None
            ),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    return list(verifier.verify(leaf, intermediates).chain)


def ocsp_url(certificate: x509.Certificate) -> str:
    """The OCSP responder URL of `certificate`'s authority information access, or ""."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return ""
    for description in access.value:
        if description.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            description.access_location, x509.UniformResourceIdentifier
        ):
            return str(description.access_location.value)
    return ""


# -- the certificate an OCSP request names (RFC 6960 §4.1.1 CertID) --------------------------------


@dataclass(frozen=True)
class CertId:
    hash_algorithm: str  # an OCPP HashAlgorithmEnumType: SHA256, SHA384 or SHA512
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int


def key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value, which an issuer key hash is taken of."""
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise ValueError("unsupported key type")


def _digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm.lower(), data).digest()


def issued_by(cert_id: CertId, ca: x509.Certificate) -> bool:
    """Whether `ca` is the issuer `cert_id` names (its name hash and key hash)."""
    try:
        return (
            _digest(cert_id.hash_algorithm, ca.subject.public_bytes()) == (cert_id.issuer_name_hash)
            and _digest(cert_id.hash_algorithm, key_bits(ca)) == cert_id.issuer_key_hash
        )
    except ValueError:
        return False


def cert_id_of(
    certificate: x509.Certificate, issuer: x509.Certificate, hash_algorithm: str = "SHA256"
) -> CertId:
    return CertId(
        hash_algorithm=hash_algorithm,
        issuer_name_hash=_digest(hash_algorithm, issuer.subject.public_bytes()),
        issuer_key_hash=_digest(hash_algorithm, key_bits(issuer)),
        serial_number=certificate.serial_number,
    )


def cert_id_from_ocpp(data: dict) -> CertId:
    """An OCPP OCSPRequestDataType (hex hashes and serial) as a CertId; raise ValueError."""
    algorithm = str(data.get("hashAlgorithm", ""))
    if algorithm not in HASHES:
        raise ValueError(f"hash algorithm {algorithm!r}")
    serial = int(str(data["serialNumber"]), 16)
    name_hash = bytes.fromhex(str(data["issuerNameHash"]))
    key_hash = bytes.fromhex(str(data["issuerKeyHash"]))
    size = HASHES[algorithm].digest_size
    if len(name_hash) != size or len(key_hash) != size:
        raise ValueError("hash length does not match the algorithm")
    return CertId(algorithm, name_hash, key_hash, serial)


def cert_id_to_ocpp(cert_id: CertId, responder_url: str) -> dict:
    return {
        "hashAlgorithm": cert_id.hash_algorithm,
        "issuerNameHash": cert_id.issuer_name_hash.hex(),
        "issuerKeyHash": cert_id.issuer_key_hash.hex(),
        "serialNumber": format(cert_id.serial_number, "x"),
        "responderURL": responder_url,
    }


def ocsp_request(cert_id: CertId) -> bytes:
    """The DER OCSPRequest for `cert_id` (no nonce: ISO 15118 charging stations cache answers)."""
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            cert_id.issuer_name_hash,
            cert_id.issuer_key_hash,
            cert_id.serial_number,
            HASHES[cert_id.hash_algorithm](),
        )
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER)


# -- the responder's answer -------------------------------------------------------------------------


@dataclass(frozen=True)
class OcspAnswer:
    status: str  # "good", "revoked" or "unknown"
    der: bytes  # the response as received: what a charger is given (M06.FR.08/09)
    this_update: datetime
    next_update: datetime | None


def _verify_signature(signer: x509.Certificate, response: ocsp.OCSPResponse) -> None:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(response.signature, response.tbs_response_bytes)
        else:
            raise OcspRefused("the response's signature algorithm is not supported")
    except InvalidSignature:
        raise OcspRefused("the response's signature does not verify") from None


def _names_signer(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == certificate.subject
    return response.responder_key_hash == hashlib.sha1(key_bits(certificate)).digest()  # noqa: S324


def _signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    """The issuer itself or a responder it delegated to (RFC 6960 §4.2.2.2): a certificate in the
    response, issued by the issuer, with the OCSPSigning extended key usage, valid now."""
    if _names_signer(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _names_signer(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
            usage = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usage and not expired([candidate], now):
            return candidate
    raise OcspRefused("the response is signed by neither the issuer nor a responder it delegated")


def _single(response: ocsp.OCSPResponse, cert_id: CertId) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if (
            single.serial_number == cert_id.serial_number
            and single.hash_algorithm.name.upper() == cert_id.hash_algorithm
            and single.issuer_name_hash == cert_id.issuer_name_hash
            and single.issuer_key_hash == cert_id.issuer_key_hash
        ):
            return single
    raise OcspRefused("the response does not answer for the certificate asked about")


_STATUS = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}


def check_ocsp_response(
    der: bytes, cert_id: CertId, issuer: x509.Certificate, now: datetime
) -> OcspAnswer:
    """Return what a DER OCSPResponse says of `cert_id`, once it proved to be a successful
    answer for that very certificate, signed by `issuer` or its delegate, current at `now`;
    raise OcspRefused otherwise."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise OcspRefused("the answer is not a DER OCSP response") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspRefused(f"the responder answered {response.response_status.name}")
    single = _single(response, cert_id)
    _verify_signature(_signer(response, issuer, now), response)
    if single.this_update_utc > now + CLOCK_SKEW:
        raise OcspRefused("the response is dated in the future")
    if single.next_update_utc is not None and single.next_update_utc < now - CLOCK_SKEW:
        raise OcspRefused("the response is out of date")
    return OcspAnswer(
        status=_STATUS[single.certificate_status],
        der=der,
        this_update=single.this_update_utc,
        next_update=single.next_update_utc,
    )
