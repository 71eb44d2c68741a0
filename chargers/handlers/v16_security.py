"""OCPP 1.6 security extension (security whitepaper edition 3): what chargers send us.

SecurityEventNotification (A04), SignCertificate (A02/A03), LogStatusNotification (N01) and
SignedFirmwareStatusNotification (L01). Same shape as chargers.handlers.v16: translate the OCPP
fields, do the ORM work through backoffice.db.run, build the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

from backoffice import db
from chargers.ocpp.protocol import parse_datetime
from chargers.plumbing.background import spawn
from chargers.security import config as security_config
from chargers.security import pki
from chargers.security import services as security_services

if TYPE_CHECKING:
    from chargers.handlers.common import Connection

logger = logging.getLogger(__name__)
security_log = logging.getLogger("chargers.security")

Handler = Callable[["Connection", dict, str], Awaitable[dict]]

# The CertificateSigned CALL follows our SignCertificate.conf; this pause keeps it behind the
# answer on the wire (A02 step 4 before step 8).
CERTIFICATE_DELIVERY_DELAY_S = 0.05


def _timestamp(value: str) -> datetime:
    try:
        return parse_datetime(value)
    except ValueError:
        return timezone.now()


async def security_event_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    # A04.FR.03: always an empty CALLRESULT; the event is stored once even if sent again.
    await db.run(
        security_services.security_event_record,
        charger_id=conn.charger_id,
        event_type=payload["type"],
        timestamp=_timestamp(payload["timestamp"]),
        tech_info=payload.get("techInfo", ""),
    )
    return {}


def _sign(csr: str, station_id: str) -> pki.IssuedCertificate:
    return pki.get_ca().sign_csr(
        csr, station_id=station_id, days=security_config.client_certificate_days()
    )


async def sign_certificate(conn: Connection, payload: dict, unique_id: str) -> dict:
    """Sign the CSR with the central system's CA (A02.FR.11/12), then send the chain back with
    a CertificateSigned CALL through the command path once this answer is out."""
    try:
        issued = await asyncio.to_thread(_sign, payload["csr"], conn.station_id)
    except pki.CsrRejected as exc:
        security_log.warning("SignCertificate of %s rejected: %s", conn.station_id, exc)
        await db.run(
            security_services.security_event_record,
            charger_id=conn.charger_id,
            event_type="InvalidCsr",
            timestamp=timezone.now(),
            tech_info=str(exc),
            source="csms",
        )
        return {"status": "Rejected"}
    certificate_id = await db.run(
        security_services.charger_certificate_record, charger_id=conn.charger_id, issued=issued
    )
    # A follow-up CALL: the handler must return (and its answer go out) first.
    spawn(
        deliver(conn.charger_id, certificate_id, issued.chain_pem),
        "Delivering a signed certificate",
    )
    return {"status": "Accepted"}


async def deliver(
    charger_id: int,
    certificate_id: int,
    chain_pem: str,
    certificate_type: str = "ChargingStationCertificate",
) -> None:
    """Send a signed chain with CertificateSigned once the SignCertificate answer is out."""
    from chargers.devices import commands
    from chargers.models import Charger

    await asyncio.sleep(CERTIFICATE_DELIVERY_DELAY_S)
    command_id, delivery = None, "offline"
    try:
        charger = await db.run(Charger.objects.get, pk=charger_id)
        signed: dict = {"certificateChain": chain_pem}
        if charger.speaks_v2():
            # 2.0.1 A02.FR.14: say which certificate this is.
            signed["certificateType"] = certificate_type
        command = await commands.send_command(charger, "CertificateSigned", signed, source="csms")
        command_id, delivery = command.pk, command.result_status or command.get_status_display()
    except commands.ChargerOffline:
        pass
    except commands.CommandTimeout as exc:
        command_id, delivery = exc.command.pk, "timeout"
    except Exception:
        logger.exception("Could not send CertificateSigned to charger %s", charger_id)
        delivery = "failed"
    await db.run(
        security_services.charger_certificate_delivered,
        certificate_id=certificate_id,
        command_id=command_id,
        delivery=delivery,
    )


async def log_status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    await db.run(
        security_services.operation_status_record,
        charger_id=conn.charger_id,
        kind="log",
        request_id=payload.get("requestId"),
        status=payload["status"],
    )
    return {}


async def signed_firmware_status_notification(
    conn: Connection, payload: dict, unique_id: str
) -> dict:
    await db.run(
        security_services.operation_status_record,
        charger_id=conn.charger_id,
        kind="firmware",
        request_id=payload.get("requestId"),
        status=payload["status"],
    )
    return {}


HANDLERS: dict[str, Handler] = {
    "SecurityEventNotification": security_event_notification,
    "SignCertificate": sign_certificate,
    "LogStatusNotification": log_status_notification,
    "SignedFirmwareStatusNotification": signed_firmware_status_notification,
}
