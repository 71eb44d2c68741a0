"""The Plug & Charge checks a charger's messages ask for, in the domain's words: the OCSP status
of a certificate (M06), a contract certificate chain and its revocation (C07), a V2G certificate
signed (A02/A03), and a car's certificate request forwarded to the PKI provider (M01/M02).

Every responder and provider URL goes through the one outbound guard (backoffice.outbound), and
an OCSP responder is called only for a CA that chains to a root the organization installed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from cryptography import x509
from cryptography.x509.verification import VerificationError
from django.conf import settings
from django.core.cache import cache

from backoffice import db, outbound
from pki import chains, local_ca, services
from pki.models import CertificateUse

logger = logging.getLogger(__name__)

OCSP_MAX_BYTES = 4096  # ocspResult is at most 5500 base64 characters (GetCertificateStatusResponse)
PROVIDER_MAX_BYTES = 64 * 1024
OCSP_CACHE_MAX_S = 86400


def _ocsp_timeout() -> float:
    return float(getattr(settings, "PKI_OCSP_TIMEOUT_S", 4.0))


def _provider_timeout() -> float:
    return float(getattr(settings, "PKI_PROVIDER_TIMEOUT_S", 4.0))


class OcspUnavailable(Exception):
    """No usable OCSP answer (responder down, blocked, refused, or its answer not trustworthy)."""


async def ocsp_fetch(
    url: str, cert_id: chains.CertId, issuer: x509.Certificate, now: datetime
) -> chains.OcspAnswer:
    """Ask the responder at `url` about `cert_id` and return its checked answer; raise
    OcspUnavailable. Only through the outbound guard (OCSP is plain HTTP as often as HTTPS:
    the answer is signed)."""
    try:
        async with outbound.async_http_client(
            timeout=_ocsp_timeout(), schemes=("http", "https")
        ) as client:
            response = await client.post(
                url,
                content=chains.ocsp_request(cert_id),
                headers={
                    "Content-Type": "application/ocsp-request",
                    "Accept": "application/ocsp-response",
                },
            )
    except httpx.HTTPError as exc:
        raise OcspUnavailable(outbound.failure_words(exc, "the OCSP responder")) from None
    if response.status_code != 200 or len(response.content) > OCSP_MAX_BYTES:
        raise OcspUnavailable(f"the OCSP responder answered HTTP {response.status_code}")
    try:
        return chains.check_ocsp_response(response.content, cert_id, issuer, now)
    except chains.OcspRefused as exc:
        raise OcspUnavailable(str(exc)) from None


# -- M06: the OCSP status of the charger's own V2G chain ------------------------------------------


@dataclass(frozen=True)
class StatusAnswer:
    ocsp_result: str  # base64 DER OCSPResponse; "" when it could not be had
    reason: str = ""  # why not, for the log


def _is_local(issuer: x509.Certificate) -> bool:
    authority = local_ca.get_authority()
    ours = {chains.fingerprint(c) for c in (authority.root, *authority.sub_cas)}
    return chains.fingerprint(issuer) in ours


async def certificate_status(*, organization_id: int | None, data: dict) -> StatusAnswer:
    """The OCSP response for the certificate an OCSPRequestDataType names, from its responder,
    when its issuer chains to one of the organization's V2G roots (M06.FR.02/03/08/09)."""
    now = datetime.now(UTC)
    try:
        cert_id = chains.cert_id_from_ocpp(data)
    except (KeyError, ValueError) as exc:
        return StatusAnswer("", f"unreadable request data: {exc}")
    if organization_id is None:
        return StatusAnswer("", "the charger belongs to no organization")
    issuer = await db.run(
        services.trusted_issuer,
        organization_id=organization_id,
        cert_id=cert_id,
        uses=(CertificateUse.V2G,),
        now=now,
    )
    if issuer is None:
        return StatusAnswer("", "its issuer chains to no V2G root the organization installed")
    settings_ = await db.run(services.settings_of, organization_id)
    if settings_.v2g_signer == "local" and await asyncio.to_thread(_is_local, issuer):
        # Our own sub-CAs: the issuer answers itself, signed with its key.
        der = local_ca.get_authority().ocsp_response(cert_id, now)
        if der is None:
            return StatusAnswer("", "no certificate of ours has this serial number")
    else:
        try:
            der = await _cached_status(str(data.get("responderURL", "")), cert_id, issuer, now)
        except OcspUnavailable as exc:
            return StatusAnswer("", str(exc))
    return StatusAnswer(base64.b64encode(der).decode())


def _cache_key(url: str, cert_id: chains.CertId) -> str:
    digest = hashlib.sha256(
        b"|".join(
            [
                url.encode(),
                cert_id.hash_algorithm.encode(),
                cert_id.issuer_name_hash,
                cert_id.issuer_key_hash,
                str(cert_id.serial_number).encode(),
            ]
        )
    ).hexdigest()
    return f"pki:ocsp:{digest}"


async def _cached_status(
    url: str, cert_id: chains.CertId, issuer: x509.Certificate, now: datetime
) -> bytes:
    """M06: every charger of a network asks weekly about the same sub-CAs; one responder answer
    serves them all while it is current (its nextUpdate, at most a day), checked again each
    time it is given out. Contracts (C07) are always asked in real time."""
    key = _cache_key(url, cert_id)
    kept = await cache.aget(key)
    if isinstance(kept, bytes):
        try:
            return chains.check_ocsp_response(kept, cert_id, issuer, now).der
        except chains.OcspRefused:
            await cache.adelete(key)
    answer = await ocsp_fetch(url, cert_id, issuer, now)
    if answer.next_update is not None:
        seconds = min((answer.next_update - now).total_seconds(), OCSP_CACHE_MAX_S)
        if seconds > 0:
            await cache.aset(key, answer.der, int(seconds))
    return answer.der


# -- C07: a contract certificate chain and its revocation ------------------------------------------


@dataclass(frozen=True)
class ContractCheck:
    """AuthorizeCertificateStatusEnumType: Accepted, CertificateExpired, CertificateRevoked or
    CertChainError (also when revocation could not be checked: never a soft fail)."""

    status: str
    reason: str = ""


async def _revocation(
    url: str, cert_id: chains.CertId, issuer: x509.Certificate, now: datetime
) -> ContractCheck | None:
    """None when the responder says good; else what the answer must say."""
    try:
        answer = await ocsp_fetch(url, cert_id, issuer, now)
    except OcspUnavailable as exc:
        return ContractCheck("CertChainError", f"revocation not checked: {exc}")
    if answer.status == "revoked":
        return ContractCheck("CertificateRevoked", "the OCSP responder says revoked")
    if answer.status != "good":
        return ContractCheck("CertChainError", "the OCSP responder does not know the certificate")
    return None


def _verified_path(
    organization_id: int, pem_chain: str, now: datetime
) -> list[x509.Certificate] | ContractCheck:
    try:
        presented = chains.load_pem_chain(pem_chain)
    except ValueError:
        return ContractCheck("CertChainError", "the certificate is not PEM")
    if chains.expired(presented, now):
        return ContractCheck("CertificateExpired", "a certificate of the chain is not valid now")
    anchors = services.roots(organization_id=organization_id, uses=(CertificateUse.MO,))
    known = services.known_sub_cas(organization_id=organization_id, uses=(CertificateUse.MO,))
    try:
        path = chains.verify_chain(presented[0], presented[1:] + known, anchors, now)
    except VerificationError as exc:
        return ContractCheck("CertChainError", f"no path to an installed MO root: {exc}"[:200])
    # Its sub-CAs are kept: a later Authorize with only the chain's OCSP data names them.
    services.sub_cas_add(
        organization_id=organization_id, use=CertificateUse.MO, certificates=path[1:-1]
    )
    return path


Lookup = tuple[str, chains.CertId, x509.Certificate]  # responder URL, what to ask, its issuer


async def _chain_lookups(
    organization_id: int, emaid: str, certificate: str, now: datetime
) -> list[Lookup] | ContractCheck:
    """The OCSP questions for a PEM contract chain, once it verified to an installed MO root."""
    path = await db.run(_verified_path, organization_id, certificate, now)
    if isinstance(path, ContractCheck):
        return path
    if chains.normalized(chains.common_name(path[0])) != chains.normalized(emaid):
        return ContractCheck("CertChainError", "the contract certificate is not the eMAID's")
    lookups: list[Lookup] = []
    for cert, issuer in zip(path, path[1:], strict=False):
        url = chains.ocsp_url(cert)
        if not url:
            return ContractCheck("CertChainError", "a certificate names no OCSP responder")
        lookups.append((url, chains.cert_id_of(cert, issuer), issuer))
    return lookups


async def _hash_lookups(
    organization_id: int, hash_data: list[dict], now: datetime
) -> list[Lookup] | ContractCheck:
    """The OCSP questions a charger sent, each only if its issuer chains to an installed MO root."""
    lookups: list[Lookup] = []
    for data in hash_data:
        try:
            cert_id = chains.cert_id_from_ocpp(data)
        except (KeyError, ValueError):
            return ContractCheck("CertChainError", "unreadable certificate hash data")
        named = await db.run(
            services.trusted_issuer,
            organization_id=organization_id,
            cert_id=cert_id,
            uses=(CertificateUse.MO,),
            now=now,
        )
        if named is None:
            return ContractCheck("CertChainError", "an issuer chains to no installed MO root")
        lookups.append((str(data.get("responderURL", "")), cert_id, named))
    return lookups


async def contract_check(
    *, organization_id: int | None, emaid: str, certificate: str, hash_data: list[dict]
) -> ContractCheck:
    """Check a contract given as a PEM chain (`certificate`, C07.FR.06) or as the OCSP data of
    its chain (`iso15118CertificateHashData`): the chain to an installed MO root, then each
    certificate's revocation with its responder, in real time (C07.FR.05/15/16/17)."""
    now = datetime.now(UTC)
    if organization_id is None:
        return ContractCheck("CertChainError", "the charger belongs to no organization")
    if certificate:
        lookups = await _chain_lookups(organization_id, emaid, certificate, now)
    else:
        lookups = await _hash_lookups(organization_id, hash_data, now)
    if isinstance(lookups, ContractCheck):
        return lookups
    for url, cert_id, issuer in lookups:
        refused = await _revocation(url, cert_id, issuer, now)
        if refused is not None:
            return refused
    return ContractCheck("Accepted")


# -- A02/A03: the charger's V2G certificate ----------------------------------------------------------


class V2gRefused(Exception):
    """The V2G CSR is not signed; the message says why."""


def _chain_to_v2g_root(organization_id: int, chain_pem: str) -> list[x509.Certificate]:
    chain = chains.load_pem_chain(chain_pem)
    anchors = services.roots(organization_id=organization_id, uses=(CertificateUse.V2G,))
    try:
        chains.verify_chain(chain[0], chain[1:], anchors, datetime.now(UTC))
    except VerificationError as exc:
        raise V2gRefused(
            f"the signed chain does not lead to an installed V2G root: {exc}"[:200]
        ) from None
    services.sub_cas_add(
        organization_id=organization_id, use=CertificateUse.V2G, certificates=chain[1:]
    )
    return chain


async def v2g_sign(
    *, organization_id: int | None, station_id: str, csr: str
) -> list[x509.Certificate]:
    """The V2G certificate chain (leaf then sub-CAs) for a charger's CSR, from our local V2G
    hierarchy or the provider, as the organization chose; checked to lead to one of its
    installed V2G roots before anything is sent. Raise V2gRefused."""
    if organization_id is None:
        raise V2gRefused("the charger belongs to no organization")
    provider = await db.run(services.settings_of, organization_id)
    if provider.v2g_signer == "local":
        authority = await asyncio.to_thread(local_ca.get_authority)
        try:
            chain_pem = "".join(
                chains.pem(c) for c in authority.sign_csr(csr, organization=settings.OCPP_CPO_NAME)
            )
        except local_ca.CsrRejected as exc:
            raise V2gRefused(str(exc)) from None
    elif provider.v2g_signer == "provider" and provider.url:
        answer = await _provider_call(
            provider, "v2g-certificates", {"stationId": station_id, "csr": csr}
        )
        chain_pem = str(answer.get("certificateChain") or "")
    else:
        raise V2gRefused("the organization signs no V2G certificates")
    try:
        return await db.run(_chain_to_v2g_root, organization_id, chain_pem)
    except ValueError:
        raise V2gRefused("the provider's answer holds no PEM certificate chain") from None


# -- M01/M02: a car's certificate installation or update -------------------------------------------


class ProviderFailed(Exception):
    """The provider gave no usable answer; the message says why (for the log)."""


async def _provider_call(provider: services.Provider, path: str, body: dict) -> dict:
    headers = {"Accept": "application/json"}
    if provider.token:
        headers["Authorization"] = f"Bearer {provider.token}"
    url = provider.url.rstrip("/") + "/" + path
    try:
        async with outbound.async_http_client(timeout=_provider_timeout()) as client:
            response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderFailed(outbound.failure_words(exc, "the PKI provider")) from None
    if response.status_code != 200 or len(response.content) > PROVIDER_MAX_BYTES:
        raise ProviderFailed(f"the PKI provider answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise ProviderFailed("the PKI provider's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ProviderFailed("the PKI provider's answer is not a JSON object")
    return answer


async def ev_certificate(
    *, organization_id: int | None, station_id: str, payload: dict
) -> tuple[str, str]:
    """Forward a car's EXI request unchanged to the organization's provider and return
    (status, exiResponse) as it answered; raise ProviderFailed."""
    provider = await db.run(services.settings_of, organization_id)
    if not provider.url:
        raise ProviderFailed("the organization has no PKI provider")
    body = {
        "stationId": station_id,
        "iso15118SchemaVersion": payload["iso15118SchemaVersion"],
        "action": payload["action"],
        "exiRequest": payload["exiRequest"],
    }
    answer = await _provider_call(provider, "ev-certificates", body)
    status, exi = answer.get("status"), answer.get("exiResponse")
    if status not in ("Accepted", "Failed") or not isinstance(exi, str) or len(exi) > 7500:
        raise ProviderFailed("the PKI provider's answer has no status and exiResponse")
    return status, exi
