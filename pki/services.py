"""Plug & Charge trust, read and written per organization: installed roots, known sub-CAs, the
PKI settings; which CA an OCSP request names, and only if it chains to an installed root."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.verification import VerificationError
from django.db import transaction
from django.utils import timezone

from backoffice import outbound, sealed
from pki import chains, local_ca
from pki.models import CertificateUse, PkiSettings, RootCertificate, SubCaCertificate


class CertificateRefused(ValueError):
    """A certificate that cannot be added; the message says why, in a host's words."""


def _load_one(pem_text: str) -> x509.Certificate:
    try:
        certificates = chains.load_pem_chain(pem_text)
    except ValueError:
        raise CertificateRefused("This is not a PEM encoded X.509 certificate.") from None
    if len(certificates) != 1:
        raise CertificateRefused("Add one certificate at a time.")
    return certificates[0]


@transaction.atomic
def root_add(*, organization_id: int, use: str, certificate_pem: str) -> RootCertificate:
    """Install a root for an organization (again: the same row); raise CertificateRefused."""
    if use not in CertificateUse.values:
        raise CertificateRefused("Unknown certificate use.")
    certificate = _load_one(certificate_pem)
    if not chains.is_ca(certificate) or certificate.issuer != certificate.subject:
        raise CertificateRefused("A root certificate is a self-signed CA certificate.")
    if chains.expired([certificate], timezone.now()):
        raise CertificateRefused("This certificate is not valid today.")
    root, _created = RootCertificate.objects.get_or_create(
        organization_id=organization_id,
        fingerprint_sha256=chains.fingerprint(certificate),
        defaults={
            "use": use,
            "certificate_pem": chains.pem(certificate),
            "subject": certificate.subject.rfc4514_string()[:255],
            "not_after": certificate.not_valid_after_utc,
        },
    )
    return root


def roots(*, organization_id: int, uses: tuple[str, ...]) -> list[x509.Certificate]:
    """The organization's installed roots of `uses`."""
    rows = RootCertificate.objects.filter(organization_id=organization_id, use__in=uses)
    return [x509.load_pem_x509_certificate(r.certificate_pem.encode()) for r in rows]


def known_sub_cas(*, organization_id: int, uses: tuple[str, ...]) -> list[x509.Certificate]:
    """The sub-CA certificates kept for the organization (used only once they chain to a root)."""
    rows = SubCaCertificate.objects.filter(organization_id=organization_id, use__in=uses)
    found = [x509.load_pem_x509_certificate(r.certificate_pem.encode()) for r in rows]
    if CertificateUse.V2G in uses and settings_of(organization_id).v2g_signer == "local":
        found.extend(local_ca.get_authority().sub_cas)
    return found


def chains_to_roots(
    certificate: x509.Certificate,
    others: list[x509.Certificate],
    anchors: list[x509.Certificate],
    now: datetime,
) -> bool:
    try:
        chains.verify_chain(certificate, others, anchors, now)
    except VerificationError:
        return False
    return True


@transaction.atomic
def sub_cas_add(
    *, organization_id: int, use: str, certificates: list[x509.Certificate]
) -> list[SubCaCertificate]:
    """Keep the CA certificates among `certificates` that chain to an installed root of `use`."""
    anchors = roots(organization_id=organization_id, uses=(use,))
    now = timezone.now()
    kept = []
    for certificate in certificates:
        if not chains.is_ca(certificate) or certificate.issuer == certificate.subject:
            continue
        if not chains_to_roots(certificate, certificates, anchors, now):
            continue
        row, _created = SubCaCertificate.objects.get_or_create(
            organization_id=organization_id,
            fingerprint_sha256=chains.fingerprint(certificate),
            defaults={
                "use": use,
                "certificate_pem": chains.pem(certificate),
                "subject": certificate.subject.rfc4514_string()[:255],
                "not_after": certificate.not_valid_after_utc,
            },
        )
        kept.append(row)
    return kept


def trusted_issuer(
    *, organization_id: int, cert_id: chains.CertId, uses: tuple[str, ...], now: datetime
) -> x509.Certificate | None:
    """The CA `cert_id` names as issuer, if it is an installed root of `uses` or a known sub-CA
    that chains to one at `now`; None otherwise (its responder is then never called)."""
    anchors = roots(organization_id=organization_id, uses=uses)
    for root in anchors:
        if chains.issued_by(cert_id, root) and not chains.expired([root], now):
            return root
    known = known_sub_cas(organization_id=organization_id, uses=uses)
    for candidate in known:
        if chains.issued_by(cert_id, candidate) and chains_to_roots(candidate, known, anchors, now):
            return candidate
    return None


@dataclass(frozen=True)
class Provider:
    """An organization's PKI settings, as the checks use them."""

    url: str = ""
    token: str = ""
    v2g_signer: str = ""


def settings_of(organization_id: int | None) -> Provider:
    if organization_id is None:
        return Provider()
    row = PkiSettings.objects.filter(organization_id=organization_id).first()
    if row is None:
        return Provider()
    return Provider(
        url=row.provider_url, token=sealed.unseal(row.provider_token), v2g_signer=row.v2g_signer
    )


@transaction.atomic
def settings_save(
    *, organization_id: int, provider_url: str, provider_token: str | None, v2g_signer: str
) -> PkiSettings:
    """Save an organization's PKI settings; the URL goes through the outbound guard first
    (raise outbound.OutboundBlocked). provider_token None keeps the stored one."""
    if provider_url:
        outbound.check_url(provider_url, schemes=("https",), unresolvable_ok=True)
    if v2g_signer not in PkiSettings.V2gSigner.values:
        raise CertificateRefused("Unknown V2G signer.")
    row, _created = PkiSettings.objects.select_for_update().get_or_create(
        organization_id=organization_id
    )
    row.provider_url = provider_url
    if provider_token is not None:
        row.provider_token = sealed.seal(provider_token)
    row.v2g_signer = v2g_signer
    row.save()
    return row


def local_v2g_root_install(*, organization_id: int) -> RootCertificate:
    """Install our local V2G root for an organization and sign its chargers' V2G certificates
    with our local hierarchy (test benches and private fleets, docs/pki.md)."""
    authority = local_ca.get_authority()
    with transaction.atomic():
        root = root_add(
            organization_id=organization_id,
            use=CertificateUse.V2G,
            certificate_pem=chains.pem(authority.root),
        )
        row, _created = PkiSettings.objects.get_or_create(organization_id=organization_id)
        row.v2g_signer = PkiSettings.V2gSigner.LOCAL
        row.save(update_fields=["v2g_signer", "updated_at"])
    return root
