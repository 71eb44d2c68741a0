"""The diagnostic bundle attached to a handed-over ticket: what an agent would otherwise look up.

Charger state and connector history, the last 50 OCPP frames, recent authorization decisions,
the session's cost lines, its payments and refunds, and the organization's recent payouts. Stored
as JSON on the ticket, a snapshot of the moment of hand-off (the admin renders it as tables).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from authorization.models import AuthorizationDecision
from billing.models import Payment, Payout, Refund, SessionCharge
from chargers.models import Charger, ChargingSession, Connector, OcppMessage, StatusEvent
from chargers.ocpp.energy import wh_text

FRAMES = 50
STATUS_HISTORY = 30
DECISIONS = 20


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def charger_section(charger: Charger) -> dict[str, Any]:
    """Return the charger's identity, connection state and connectors."""
    return {
        "station_id": charger.station_id,
        "property": charger.property.name if charger.property is not None else "",
        "organization_id": charger.organization_id,
        "vendor": charger.vendor,
        "model": charger.model,
        "serial_number": charger.serial_number,
        "firmware_version": charger.firmware_version,
        "ocpp_version": charger.ocpp_version,
        "online": charger.is_online(),
        "registration_status": charger.registration_status,
        "access_mode": charger.access_mode,
        "ownership": charger.ownership,
        "guest_charging": charger.effective_guest_charging_enabled,
        "license_valid_until": _str(charger.license_valid_until),
        "out_of_order": charger.out_of_order,
        "token_groups": [g.name for g in charger.token_groups.all()],
        "connected_at": _iso(charger.connected_at),
        "disconnected_at": _iso(charger.disconnected_at),
        "last_seen_at": _iso(charger.last_seen_at),
        "last_heartbeat_at": _iso(charger.last_heartbeat_at),
        "last_boot_at": _iso(charger.last_boot_at),
        "connectors": [
            {
                "connector_id": c.connector_id,
                "status": c.status,
                "error_code": c.error_code,
                "vendor_error_code": c.vendor_error_code,
                "info": c.info,
                "status_timestamp": _iso(c.status_timestamp),
            }
            for c in Connector.objects.filter(charger=charger).order_by("connector_id")
        ],
    }


def bundle_build(
    *,
    charger: Charger | None,
    session: ChargingSession | None,
    organization_id: int | None,
    facts: list[str],
) -> dict[str, Any]:
    """Return the diagnostic bundle as JSON-ready data."""
    bundle: dict[str, Any] = {"facts": facts}
    if charger is not None:
        bundle["charger"] = charger_section(charger)
        history = StatusEvent.objects.filter(charger=charger).order_by("-timestamp", "-id")[
            :STATUS_HISTORY
        ]
        bundle["connector_history"] = [
            {
                "connector_id": e.connector_id,
                "status": e.status,
                "error_code": e.error_code,
                "timestamp": _iso(e.timestamp),
            }
            for e in history
        ]
        frames = OcppMessage.objects.filter(charger=charger).order_by("-id")[:FRAMES]
        bundle["frames"] = [
            {
                "id": m.pk,
                "timestamp": _iso(m.timestamp),
                "direction": m.direction,
                "message_type": m.message_type,
                "action": m.action,
                "unique_id": m.unique_id,
                "payload": m.payload if m.payload is not None else m.raw,
            }
            for m in frames
        ]
        decisions = AuthorizationDecision.objects.filter(station_id=charger.station_id).order_by(
            "-created_at"
        )[:DECISIONS]
        bundle["decisions"] = [
            {
                "created_at": _iso(d.created_at),
                "uid": d.uid,
                "context": d.context,
                "status": d.status,
                "reason": d.reason,
                "message": d.message,
                "connector_id": d.connector_id,
            }
            for d in decisions
        ]
    if session is not None:
        bundle["session"] = {
            "id": session.pk,
            "transaction_id": session.transaction_id,
            "station_id": session.charger.station_id,
            "connector_id": session.connector_id,
            "id_tag": session.id_tag,
            "status": session.status,
            "started_at": _iso(session.started_at),
            "stopped_at": _iso(session.stopped_at),
            "energy_wh": wh_text(session.energy_wh) or None,  # exact, as text
            "no_energy_reading": session.no_reading,
            "stop_reason": session.stop_reason,
        }
        charge = SessionCharge.objects.filter(session=session).first()
        if charge is not None:
            bundle["cost"] = {
                "currency": charge.currency,
                "final": charge.final,
                "lines": [
                    {
                        "kind": line.get("kind", ""),
                        "description": line.get("description", ""),
                        "quantity": _str(line.get("quantity")),
                        "unit": line.get("unit", ""),
                        "unit_price": _str(line.get("unit_price")),
                        "amount": _str(line.get("amount")),
                    }
                    for line in charge.lines
                ],
                "subtotal": str(charge.subtotal),
                "tax": str(charge.tax),
                "total": str(charge.total),
                "tax_percent": str(charge.tax_percent),
                "prices_include_tax": charge.prices_include_tax,
                "processing_fee": str(charge.processing_fee),
            }
        bundle["payments"] = [
            {
                "id": p.pk,
                "reference": p.reference,
                "status": p.status,
                "email": p.email,
                "card_last4": getattr(p, "card_last4", ""),
                "currency": p.currency,
                "held": str(p.amount_held),
                "captured": str(p.amount_captured),
                "refunded": str(p.amount_refunded),
                "release_reason": p.release_reason,
                "created_at": _iso(p.created_at),
                "refunds": [
                    {"amount": str(r.amount), "reason": r.reason, "created_at": _iso(r.created_at)}
                    for r in Refund.objects.filter(payment=p).order_by("created_at")
                ],
            }
            for p in Payment.objects.filter(session=session).order_by("created_at")
        ]
    if organization_id is not None:
        bundle["payouts"] = [
            {
                "id": p.pk,
                "reference": p.reference,
                "status": p.status,
                "currency": p.currency,
                "period_start": _iso(p.period_start),
                "period_end": _iso(p.period_end),
                "net": str(p.net),
                "failure_reason": p.failure_reason,
                "paid_at": _iso(p.paid_at),
            }
            for p in Payout.objects.filter(organization_id=organization_id).order_by("-period_end")[
                :5
            ]
        ]
    return bundle
