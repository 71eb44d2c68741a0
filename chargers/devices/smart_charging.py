"""OCPP 2.0.1 smart charging (K01-K17): the profiles a charger holds, the checks before a
profile is sent, and the charger's limit and EV notifications. Synchronous ORM code.

What a charger holds is learnt from its answers: a SetChargingProfile it Accepted installs (or
replaces, K01.FR.05) the profile, a ClearChargingProfile it Accepted clears the matching ones, and
ReportChargingProfiles (the answer to GetChargingProfiles, K09) reports what it really has,
including profiles set by others (an EMS: chargingLimitSource). The rules between fields and
against the installed profiles are the pure chargers.ocpp.v201_smart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from chargers.models import (
    Charger,
    ChargerNotice,
    ChargingProfile,
    ChargingSession,
    Command,
    Connector,
)
from chargers.ocpp import v201_smart as rules
from chargers.ocpp.protocol import OcppError, parse_datetime

Status = ChargingProfile.Status


def _time(value: Any) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def installed_profiles(charger_id: int) -> list[rules.Installed]:
    return [
        rules.Installed(
            profile_id=p.profile_id,
            evse_id=p.evse_id,
            stack_level=p.stack_level,
            purpose=p.purpose,
            transaction_id=p.transaction_id,
            valid_from=p.valid_from,
            valid_to=p.valid_to,
        )
        for p in ChargingProfile.objects.filter(charger_id=charger_id, status=Status.INSTALLED)
    ]


def active_transactions(charger_id: int) -> dict[str, int]:
    """The charger's transactionId -> EVSE of its running 2.0.1 transactions."""
    return dict(
        ChargingSession.objects.filter(charger_id=charger_id, status=ChargingSession.Status.ACTIVE)
        .exclude(ocpp_transaction_id="")
        .values_list("ocpp_transaction_id", "connector_id")
    )


def check_outgoing(*, charger_id: int, action: str, payload: dict[str, Any]) -> None:
    """Raise OcppError if a 2.0.1 smart charging command breaks a K rule (after the schema check)."""
    if action == "SetChargingProfile":
        evse_id = int(payload["evseId"])
        profile = payload["chargingProfile"]
        evse_ids = Connector.objects.filter(charger_id=charger_id, connector_id__gt=0).values_list(
            "connector_id", flat=True
        )
        needs = ChargerNotice.objects.filter(
            charger_id=charger_id,
            action="NotifyEVChargingNeeds",
            evse_id=evse_id,
            received_at__gte=ChargingSession.objects.filter(
                charger_id=charger_id, connector_id=evse_id, status=ChargingSession.Status.ACTIVE
            ).values("received_start_at")[:1],
        ).exists()
        rules.check_profile(
            evse_id,
            profile,
            evse_ids=list(evse_ids),
            active_transactions=active_transactions(charger_id),
            installed=installed_profiles(charger_id),
            ev_charging_needs=needs,
        )
    elif action == "RequestStartTransaction" and "chargingProfile" in payload:
        profile = payload["chargingProfile"]
        # K05 / F01.FR.08-.12: a remote start's profile is a TxProfile without a transactionId.
        if profile.get("chargingProfilePurpose") != rules.TX_PROFILE:
            raise OcppError(
                "PropertyConstraintViolation",
                "The chargingProfile of a remote start is a TxProfile (F01.FR.08)",
            )
        if profile.get("transactionId"):
            raise OcppError(
                "PropertyConstraintViolation",
                "A remote start's TxProfile has no transactionId yet (F01.FR.12)",
            )
        for schedule in profile.get("chargingSchedule") or []:
            rules.check_schedule(
                schedule, str(profile.get("chargingProfileKind")), rules.TX_PROFILE
            )


_PURPOSE_201 = {"ChargePointMaxProfile": rules.STATION_MAX}


def as_201(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Return a 1.6 SetChargingProfile / ClearChargingProfile payload in 2.0.1 words, so what a
    1.6 charger holds is kept as a 2.0.1 one's is (connectorId is the EVSE, ChargePointMaxProfile
    the ChargingStationMaxProfile, a transactionId a string)."""
    if action == "ClearChargingProfile":
        criteria = {
            key201: payload[key16]
            for key16, key201 in (
                ("connectorId", "evseId"),
                ("chargingProfilePurpose", "chargingProfilePurpose"),
                ("stackLevel", "stackLevel"),
            )
            if key16 in payload
        }
        if "chargingProfilePurpose" in criteria:
            purpose = criteria["chargingProfilePurpose"]
            criteria["chargingProfilePurpose"] = _PURPOSE_201.get(purpose, purpose)
        return {"chargingProfileId": payload.get("id"), "chargingProfileCriteria": criteria}
    profile = dict(payload.get("csChargingProfiles") or {})
    profile["id"] = profile.pop("chargingProfileId", None)
    purpose = profile.get("chargingProfilePurpose", "")
    profile["chargingProfilePurpose"] = _PURPOSE_201.get(purpose, purpose)
    if "transactionId" in profile:
        profile["transactionId"] = str(profile["transactionId"])
    if "chargingSchedule" in profile:
        profile["chargingSchedule"] = [profile["chargingSchedule"]]
    return {"evseId": payload.get("connectorId", 0), "chargingProfile": profile}


def _profile_fields(evse_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "evse_id": max(int(evse_id), 0),
        "stack_level": int(profile.get("stackLevel", 0)),
        "purpose": str(profile.get("chargingProfilePurpose", ""))[:40],
        "kind": str(profile.get("chargingProfileKind", ""))[:10],
        "transaction_id": str(profile.get("transactionId") or "")[:36],
        "valid_from": _time(profile.get("validFrom")),
        "valid_to": _time(profile.get("validTo")),
        "profile": profile,
        "updated_at": timezone.now(),
    }


def rate_units_record(*, charger_id: int, units: str) -> None:
    """Keep the units the charger declares it takes in a profile ("A", "W", "A,W"). A new
    declaration forgets what a retry taught (power.enforcement asks in the declared unit again)."""
    Charger.objects.filter(pk=charger_id).exclude(rate_units=units).update(
        rate_units=units, rate_unit_learnt=""
    )


def rate_unit_learnt(*, charger_id: int, unit: str) -> None:
    """Remember the unit this charger was found to take after a profile in the other one was
    rejected (power.enforcement): retried once, not every time."""
    Charger.objects.filter(pk=charger_id).update(rate_unit_learnt=unit)


@transaction.atomic
def record_answer(
    *, charger_id: int, action: str, payload: dict[str, Any], status: str, response: Any
) -> None:
    """Keep what the charger holds after answering SetChargingProfile or ClearChargingProfile."""
    if status != Command.Status.ANSWERED or not isinstance(response, dict):
        return
    answer = str(response.get("status", ""))
    if action == "SetChargingProfile":
        profile = payload["chargingProfile"]
        if answer == "Accepted":
            ChargingProfile.objects.update_or_create(
                charger_id=charger_id,
                profile_id=profile["id"],
                defaults={
                    **_profile_fields(payload["evseId"], profile),
                    "status": Status.INSTALLED,
                    "charger_answer": answer,
                    "source": "csms",
                },
            )
        else:
            # A rejected profile replaces nothing (K01.FR.05 applies to accepted ones only).
            ChargingProfile.objects.get_or_create(
                charger_id=charger_id,
                profile_id=profile["id"],
                defaults={
                    **_profile_fields(payload["evseId"], profile),
                    "status": Status.REJECTED,
                    "charger_answer": answer[:20],
                    "source": "csms",
                },
            )
    elif action == "ClearChargingProfile" and answer == "Accepted":
        criteria = payload.get("chargingProfileCriteria") or {}
        profile_id = payload.get("chargingProfileId")
        cleared = [
            p.profile_id
            for p in installed_profiles(charger_id)
            if rules.clear_matches(criteria, profile_id, p)
        ]
        ChargingProfile.objects.filter(charger_id=charger_id, profile_id__in=cleared).update(
            status=Status.CLEARED, updated_at=timezone.now()
        )


def _summary(action: str, payload: dict[str, Any]) -> str:
    if action == "NotifyChargingLimit":
        limit = payload.get("chargingLimit") or {}
        grid = " (grid critical)" if limit.get("isGridCritical") else ""
        return f"Limit set by {limit.get('chargingLimitSource', '?')}{grid}"
    if action == "ClearedChargingLimit":
        return f"Limit of {payload.get('chargingLimitSource', '?')} cleared"
    if action == "NotifyEVChargingNeeds":
        needs = payload.get("chargingNeeds") or {}
        parts = [f"transfer {needs.get('requestedEnergyTransfer', '?')}"]
        ac, dc = needs.get("acChargingParameters") or {}, needs.get("dcChargingParameters") or {}
        energy = ac.get("energyAmount") or dc.get("energyRequest")
        if energy is not None:
            parts.append(f"{energy} Wh wanted")
        if needs.get("departureTime"):
            parts.append(f"leaves {needs['departureTime']}")
        return ", ".join(parts)
    if action == "NotifyEVChargingSchedule":
        schedule = payload.get("chargingSchedule") or {}
        periods = schedule.get("chargingSchedulePeriod") or []
        return f"EV schedule from {payload.get('timeBase', '?')}: {len(periods)} period(s) in {schedule.get('chargingRateUnit', '?')}"
    if action == "NotifyMonitoringReport":
        return f"Report {payload.get('requestId')}: {len(payload.get('monitor') or [])} variable(s)"
    if action == "NotifyCustomerInformation":
        more = ", more to follow" if payload.get("tbc") else ""
        return f"Customer information for request {payload.get('requestId')}, part {payload.get('seqNo')}{more}"
    if action == "NotifyDisplayMessages":
        return f"Display messages for request {payload.get('requestId')}: {len(payload.get('messageInfo') or [])}"
    if action == "PublishFirmwareStatusNotification":
        return f"Firmware publication {payload.get('requestId', '')}: {payload.get('status', '?')}"
    return ""


@transaction.atomic
def notice_store(*, charger_id: int, action: str, payload: dict[str, Any]) -> ChargerNotice:
    """Store a limit, EV or monitoring notification as received (K12-K17, N02)."""
    evse_id = payload.get("evseId")
    notice = ChargerNotice.objects.create(
        charger_id=charger_id,
        action=action,
        evse_id=evse_id if isinstance(evse_id, int) and evse_id >= 0 else None,
        summary=_summary(action, payload)[:300],
        payload=payload,
    )
    if action == "ClearedChargingLimit":
        # K13: the external system's limit is gone; the profiles it set on the charger with it.
        cleared = ChargingProfile.objects.filter(
            charger_id=charger_id,
            source=str(payload.get("chargingLimitSource", ""))[:20],
            status=Status.INSTALLED,
        )
        if isinstance(evse_id, int):
            cleared = cleared.filter(evse_id=evse_id)
        cleared.update(status=Status.CLEARED, updated_at=timezone.now())
    return notice


@transaction.atomic
def profiles_report_store(*, charger_id: int, payload: dict[str, Any]) -> int:
    """ReportChargingProfiles (K09): what the charger holds on one EVSE, from one source."""
    source = str(payload.get("chargingLimitSource", "CSO"))[:20]
    count = 0
    for profile in payload.get("chargingProfile") or []:
        ChargingProfile.objects.update_or_create(
            charger_id=charger_id,
            profile_id=profile["id"],
            defaults={
                **_profile_fields(payload["evseId"], profile),
                "status": Status.INSTALLED,
                "source": "csms" if source == "CSO" else source,
            },
        )
        count += 1
    return count
