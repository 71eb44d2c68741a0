"""OCPP 2.0.1 Plug & Charge (ISO 15118) handlers: Authorize with a contract certificate (C07),
GetCertificateStatus (M06), Get15118EVCertificate (M01/M02) and SignCertificate for the V2G
certificate (A02/A03). The checks are pki.checks'; these map the wire to them and back.
Registered in chargers.handlers.v201's dispatch."""

from __future__ import annotations

import asyncio
import logging

from django.utils import timezone

from authorization.decisions import REASONS, Context, Decision, Status
from authorization.services import decision_record
from backoffice import db
from chargers.devices import ev_needs, smart_charging
from chargers.handlers import common, v16_security
from chargers.ocpp import quirks, v201_ev_needs
from chargers.ocpp.protocol201 import id_token_status
from chargers.plumbing.background import spawn
from chargers.security import pki as csms_pki
from chargers.security import services as security_services
from pki import chains, checks

logger = logging.getLogger(__name__)
security_log = logging.getLogger("chargers.security")

# M01/M02: the car waits 5 s for CertificateInstallationRes; the charger needs its share.
EV_CERTIFICATE_DEADLINE_S = 4.5
# C07.FR.15-17: a refused contract, and what the idToken is then reported as.
_REFUSED = {
    "CertificateRevoked": ("contract_revoked", Status.INVALID),
    "CertificateExpired": ("contract_expired", Status.EXPIRED),
    "CertChainError": ("contract_unverified", Status.INVALID),
}
# C07.FR.13: a valid contract whose eMAID is refused is ContractCancelled.
_CANCELLED = {"Blocked", "Expired", "Invalid", "Unknown"}


async def _organization(conn: common.Connection) -> int | None:
    return await db.run(security_services.charger_organization_id, charger_id=conn.charger_id)


def is_contract(payload: dict) -> bool:
    """An Authorize that carries a contract certificate or its OCSP data (C07)."""
    return bool(payload.get("certificate") or payload.get("iso15118CertificateHashData"))


async def authorize_contract(conn: common.Connection, payload: dict, unique_id: str) -> dict:
    """C07: the contract chain and its revocation first, then the eMAID decided like any card
    (groups, blocking, MSPs, roaming), the decision recorded either way."""
    emaid = payload["idToken"]["idToken"]
    check = await checks.contract_check(
        organization_id=await _organization(conn),
        emaid=emaid,
        certificate=payload.get("certificate") or "",
        hash_data=payload.get("iso15118CertificateHashData") or [],
    )
    refused = _REFUSED.get(check.status)
    # A foreign contract's provider is asked live only for a chain we verified.
    decision, record, card = await common.decide_unrecorded(
        conn, emaid, Context.LOCAL, None, unique_id, contract=refused is None
    )
    if refused is not None:
        reason, status = refused
        security_log.info("Contract of %s at %s refused: %s", emaid, conn.station_id, check.reason)
        record["decision"] = Decision(status, reason, *REASONS[reason])
        await db.run(decision_record, **record)
        return {"idTokenInfo": {"status": str(status)}, "certificateStatus": check.status}
    await db.run(decision_record, **record)
    answer = id_token_status(str(decision.status), decision.reason)
    info: dict = {"status": answer}
    if card and card[1].parent_id_tag:
        info["groupIdToken"] = {"idToken": card[1].parent_id_tag, "type": "Central"}
    return {
        "idTokenInfo": info,
        "certificateStatus": "ContractCancelled" if answer in _CANCELLED else "Accepted",
    }


async def get_certificate_status(conn: common.Connection, payload: dict, unique_id: str) -> dict:
    """M06: the OCSP response for a sub-CA of the charger's V2G chain, as its responder signed it
    (never one we made up for a CA that is not ours)."""
    answer = await checks.certificate_status(
        organization_id=await _organization(conn), data=payload["ocspRequestData"]
    )
    if not answer.ocsp_result:
        security_log.info("GetCertificateStatus of %s failed: %s", conn.station_id, answer.reason)
        return {"status": "Failed", "statusInfo": {"reasonCode": "OcspUnavailable"}}
    return {"status": "Accepted", "ocspResult": answer.ocsp_result}


async def get_15118_ev_certificate(conn: common.Connection, payload: dict, unique_id: str) -> dict:
    """M01/M02: the car's EXI request forwarded unchanged to the PKI provider, its EXI answer
    returned unchanged, within the time the car waits."""
    try:
        async with asyncio.timeout(EV_CERTIFICATE_DEADLINE_S):
            status, exi = await checks.ev_certificate(
                organization_id=await _organization(conn),
                station_id=conn.station_id,
                payload=payload,
            )
    except (checks.ProviderFailed, TimeoutError) as exc:
        logger.info("Get15118EVCertificate of %s failed: %s", conn.station_id, exc or "timeout")
        return {"status": "Failed", "exiResponse": "", "statusInfo": {"reasonCode": "NoProvider"}}
    return {"status": status, "exiResponse": exi}


def _issued(chain: list) -> csms_pki.IssuedCertificate:
    leaf = chain[0]
    chain_pem = "".join(chains.pem(c) for c in chain)
    return csms_pki.IssuedCertificate(
        certificate_pem=chains.pem(leaf),
        chain_pem=chain_pem,
        serial_number=format(leaf.serial_number, "x"),
        fingerprint_sha256=chains.fingerprint(leaf),
        subject=leaf.subject.rfc4514_string(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
    )


async def sign_certificate(conn: common.Connection, payload: dict, unique_id: str) -> dict:
    """A02/A03: a V2G certificate is signed by the organization's V2G hierarchy (ours or the
    provider's) and must lead to one of its installed V2G roots; a charging station certificate
    by our CSMS CA, as before."""
    if payload.get("certificateType") != "V2GCertificate":
        return await v16_security.sign_certificate(conn, payload, unique_id)
    try:
        chain = await checks.v2g_sign(
            organization_id=await _organization(conn),
            station_id=conn.station_id,
            csr=payload["csr"],
        )
    except (checks.V2gRefused, checks.ProviderFailed) as exc:
        security_log.warning("V2G SignCertificate of %s rejected: %s", conn.station_id, exc)
        await db.run(
            security_services.security_event_record,
            charger_id=conn.charger_id,
            event_type="InvalidCsr",
            timestamp=timezone.now(),
            tech_info=f"V2GCertificate: {exc}"[:255],
            source="csms",
        )
        return {"status": "Rejected"}
    issued = _issued(chain)
    certificate_id = await db.run(
        security_services.charger_certificate_record,
        charger_id=conn.charger_id,
        issued=issued,
        certificate_type="V2GCertificate",
    )
    spawn(
        v16_security.deliver(conn.charger_id, certificate_id, issued.chain_pem, "V2GCertificate"),
        "Delivering a V2G certificate",
    )
    return {"status": "Accepted"}


# -- K15-K17: the car's charging needs ---------------------------------------------------------------


async def notify_ev_charging_needs(conn: common.Connection, payload: dict, unique_id: str) -> dict:
    """K15: Accepted, then a TxProfile for the car's transaction within the site's allowance
    (sent right after this answer, well within the 60 s of K15.FR.06); Rejected when no
    transaction runs on that EVSE (a TxProfile needs one)."""
    await db.run(
        smart_charging.notice_store,
        charger_id=conn.charger_id,
        action="NotifyEVChargingNeeds",
        payload=payload,
    )
    evse_id = payload["evseId"]
    found = await db.run(ev_needs.needs_transaction, charger_id=conn.charger_id, evse_id=evse_id)
    if found is None:
        return {"status": "Rejected", "statusInfo": {"reasonCode": "NoTransaction"}}
    session_id, transaction_id = found
    profile = await db.run(
        ev_needs.needs_payload,
        evse_id=evse_id,
        transaction_id=transaction_id,
        session_id=session_id,
        needs=payload["chargingNeeds"],
        start=timezone.now() if conn.quirks.has(quirks.REJECTS_RELATIVE) else None,
    )
    spawn(ev_needs.profile_send(conn.charger_id, profile), "Answering a car's charging needs")
    return {"status": "Accepted"}


async def notify_ev_charging_schedule(
    conn: common.Connection, payload: dict, unique_id: str
) -> dict:
    """K15.FR.11-13: the car's schedule checked against the TxProfile the charger accepted for
    the transaction; beyond it, Rejected and the profile sent again (a renegotiation, K16)."""
    await db.run(
        smart_charging.notice_store,
        charger_id=conn.charger_id,
        action="NotifyEVChargingSchedule",
        payload=payload,
    )
    evse_id = payload["evseId"]
    found = await db.run(ev_needs.needs_transaction, charger_id=conn.charger_id, evse_id=evse_id)
    sent = (
        await db.run(
            ev_needs.last_sent, charger_id=conn.charger_id, evse_id=evse_id, transaction_id=found[1]
        )
        if found
        else None
    )
    if sent is None or v201_ev_needs.within(payload["chargingSchedule"], sent, ev_needs.PHASES):
        return {"status": "Accepted"}
    spawn(ev_needs.profile_send(conn.charger_id, sent), "Renegotiating a car's schedule")
    return {"status": "Rejected", "statusInfo": {"reasonCode": "ExceedsLimits"}}


HANDLERS: dict[str, common.Handler] = {
    "SignCertificate": sign_certificate,
    "GetCertificateStatus": get_certificate_status,
    "Get15118EVCertificate": get_15118_ev_certificate,
    "NotifyEVChargingNeeds": notify_ev_charging_needs,
    "NotifyEVChargingSchedule": notify_ev_charging_schedule,
}
