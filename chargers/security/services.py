"""Charger identity and security writes (docs/security.md): station ids, passwords and security
profiles, certificates, security events, AuthorizationKey changes, signed firmware and log
operations, and two clients fighting over one station id. Synchronous ORM code."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from chargers.models import Charger, Command

if TYPE_CHECKING:
    from backoffice.models import Property
    from chargers.security import pki


@transaction.atomic
def charger_set_password(*, charger: Charger, password: str | None) -> None:
    charger.set_ocpp_password(password)
    charger.save(update_fields=["ocpp_password_hash"])


def charger_record_identity_conflict(*, charger_id: int, replacements: int) -> None:
    Charger.objects.filter(pk=charger_id).update(
        identity_conflict_at=timezone.now(), identity_conflict_replacements=replacements
    )


IDENTITY_CONFLICT_REPLACEMENTS_PER_MINUTE = 5


def charger_note_replacement(*, charger_id: int, station_id: str) -> bool:
    """Count a socket replacing another for this station id; more than a few a minute means two
    clients are fighting over one id: logged once (per 10 minutes) and shown on the Overview."""
    from django.conf import settings

    from backoffice import throttle

    limit = getattr(
        settings, "OCPP_IDENTITY_CONFLICT_REPLACEMENTS", IDENTITY_CONFLICT_REPLACEMENTS_PER_MINUTE
    )
    count = throttle.hit("cp-replaced", str(charger_id), 60)
    if count <= limit:
        return False
    charger_record_identity_conflict(charger_id=charger_id, replacements=count)
    if throttle.hit("cp-conflict-logged", str(charger_id), 600) == 1:
        logging.getLogger("chargers.security").warning(
            "Two clients are fighting over station id %s: %d replaced sockets within a minute",
            station_id,
            count,
        )
    return True


# -- charger identity and security (docs/security.md) ------------------------------------------------


class SecurityProfileRefused(Exception):
    """The requested security profile change is not allowed; the message says why."""


@transaction.atomic
def charger_rotate_password(*, charger: Charger) -> str:
    """Give the charger a new generated password and return it: the caller shows it once;
    only its hash is stored, and the old password stops working at once."""
    from chargers.security import credentials

    password = credentials.generate_password()
    charger.set_ocpp_password(password)
    charger.save(update_fields=["ocpp_password_hash", "ocpp_password_set_at"])
    logging.getLogger("chargers.security").warning(
        "New OCPP password generated for %s", charger.station_id
    )
    return password


@transaction.atomic
def charger_set_security_profile(*, charger: Charger, profile: int, by_staff: bool) -> str | None:
    """Set the least a connection of this charger must prove; return a generated password when
    the new profile needs one and the charger had none (shown once by the caller).

    Profile 0 (no authentication) and any lowering are for staff only: hosts cannot weaken a
    charger, and OCPP itself never lowers a profile (A00.FR.005).
    """
    profile = int(profile)
    if profile not in Charger.SecurityProfile.values:
        raise SecurityProfileRefused("Choose a security profile between 0 and 3.")
    if profile == Charger.SecurityProfile.NONE and not by_staff:
        raise SecurityProfileRefused(
            "Only support staff can let a charger connect without authentication."
        )
    if profile < charger.security_profile and not by_staff:
        raise SecurityProfileRefused("Only support staff can lower a charger's security profile.")
    password = None
    fields = ["security_profile", "security_profile_pending"]
    if (
        profile in (Charger.SecurityProfile.BASIC_AUTH, Charger.SecurityProfile.TLS_BASIC_AUTH)
        and not charger.ocpp_password_hash
    ):
        from chargers.security import credentials

        password = credentials.generate_password()
        charger.set_ocpp_password(password)
        fields += ["ocpp_password_hash", "ocpp_password_set_at"]
    if profile != charger.security_profile:
        logging.getLogger("chargers.security").warning(
            "Security profile of %s set from %s to %s",
            charger.station_id,
            charger.security_profile,
            profile,
        )
    charger.security_profile = profile
    if charger.security_profile_pending is not None and charger.security_profile_pending <= profile:
        charger.security_profile_pending = None
    charger.save(update_fields=fields)
    return password


# One answer whether the id is taken in this organization, another one or not at all, so
# neither the API nor the portal tells a host which station ids exist elsewhere on the platform.
STATION_ID_UNAVAILABLE = "This station id cannot be used."


def station_id_problem(station_id: str) -> str | None:
    """Return why a new charger may not take this Station ID, or None (API and portal alike)."""
    from django.core.exceptions import ValidationError

    from chargers.models import station_id_validator

    try:
        station_id_validator(station_id)
    except ValidationError as exc:
        return " ".join(exc.messages)
    if Charger.objects.filter(station_id=station_id).exists():
        return STATION_ID_UNAVAILABLE
    return None


class StationIdRefused(ValueError):
    pass


@transaction.atomic
def charger_create(
    *,
    prop: Property,
    station_id: str,
    name: str = "",
    security_profile: int = 1,
    by_staff: bool = False,
) -> tuple[Charger, str | None]:
    """Add a charger to a location; return it and its generated OCPP password (profiles 1-2),
    which the caller shows once: only its hash is stored."""
    problem = station_id_problem(station_id)
    if problem:
        raise StationIdRefused(problem)
    charger = Charger(property=prop, station_id=station_id, name=name.strip())
    charger.full_clean(exclude=["ocpp_password_hash"], validate_unique=False)
    try:
        with transaction.atomic():
            charger.save()
    except IntegrityError:  # taken between the check and the insert
        raise StationIdRefused(STATION_ID_UNAVAILABLE) from None
    password = charger_set_security_profile(
        charger=charger, profile=security_profile, by_staff=by_staff
    )
    return charger, password


def charger_password_rehash(*, charger_id: int, old_hash: str, new_hash: str) -> bool:
    """Replace a slow legacy hash by the fast one after a successful login (unless it changed)."""
    return bool(
        Charger.objects.filter(pk=charger_id, ocpp_password_hash=old_hash).update(
            ocpp_password_hash=new_hash
        )
    )


def charger_security_profile_adopt(*, charger_id: int, profile: int) -> None:
    """The charger connected at its pending profile: make it the least it may connect with."""
    Charger.objects.filter(pk=charger_id, security_profile__lt=profile).update(
        security_profile=profile
    )
    Charger.objects.filter(pk=charger_id, security_profile_pending__lte=profile).update(
        security_profile_pending=None
    )


def charger_certificate_revoked(fingerprint: str) -> bool:
    from chargers.models import ChargerCertificate

    return ChargerCertificate.objects.filter(
        fingerprint_sha256=fingerprint, revoked_at__isnull=False
    ).exists()


def charger_certificate_record(
    *,
    charger_id: int,
    issued: pki.IssuedCertificate,
    certificate_type: str = "ChargingStationCertificate",
) -> int:
    """Keep a certificate our CA (or the V2G hierarchy) issued; return its id."""
    from chargers.models import ChargerCertificate

    return ChargerCertificate.objects.create(
        charger_id=charger_id,
        certificate_type=certificate_type,
        serial_number=issued.serial_number,
        fingerprint_sha256=issued.fingerprint_sha256,
        subject=issued.subject[:255],
        not_before=issued.not_before,
        not_after=issued.not_after,
        certificate_pem=issued.certificate_pem,
    ).pk


def charger_organization_id(*, charger_id: int) -> int | None:
    """The organization a charger belongs to (through its property), or None."""
    from chargers.models import Charger

    return (
        Charger.objects.filter(pk=charger_id)
        .values_list("property__organization_id", flat=True)
        .first()
    )


def charger_certificate_delivered(
    *, certificate_id: int, command_id: int | None, delivery: str
) -> None:
    from chargers.models import ChargerCertificate

    ChargerCertificate.objects.filter(pk=certificate_id).update(
        command_id=command_id, delivery=delivery[:40]
    )


def security_event_record(
    *,
    charger_id: int,
    event_type: str,
    timestamp: datetime,
    tech_info: str = "",
    source: str = "charger",
) -> bool:
    """Store a security event once (a repeated notification changes nothing); return whether it is new."""
    from chargers.models import CRITICAL_SECURITY_EVENTS, SecurityEvent

    _, created = SecurityEvent.objects.get_or_create(
        charger_id=charger_id,
        source=source,
        event_type=event_type[:50],
        timestamp=timestamp,
        tech_info=tech_info[:255],
        defaults={"critical": event_type in CRITICAL_SECURITY_EVENTS},
    )
    if created and event_type in CRITICAL_SECURITY_EVENTS:
        logging.getLogger("chargers.security").warning(
            "Critical security event %s from charger %s", event_type, charger_id
        )
    return created


def security_event_record_refusal(*, charger_id: int, event_type: str, tech_info: str) -> bool:
    """Keep a refused handshake of a known charger as a central-system security event, at most
    one per charger and kind a minute (the log has every one), so a flood costs no writes."""
    from backoffice import throttle

    if throttle.hit("ocpp-refused", f"{charger_id}:{event_type}", 60) > 1:
        return False
    return security_event_record(
        charger_id=charger_id,
        event_type=event_type,
        timestamp=timezone.now(),
        tech_info=tech_info,
        source="csms",
    )


# UpdateFirmware: 1.6 (no requestId: its FirmwareStatusNotifications follow the charger's
# latest firmware operation) and 2.0.1 (requestId, L01); campaigns follow them (fleet/).
OPERATION_ACTIONS = {
    "GetLog": "log",
    "SignedUpdateFirmware": "firmware",
    "UpdateFirmware": "firmware",
}


def command_security_prepare(*, command: Command, payload: dict) -> None:
    """Before a CALL goes out: keep the hash of a new AuthorizationKey (never the key) until the
    charger answers, and open the operation a GetLog or SignedUpdateFirmware starts."""
    from chargers.models import (
        AuthorizationKeyChange,
        ChargerOperation,
        ChargerOperationStatus,
        Command,
    )

    if command.status != Command.Status.PENDING:
        return
    from chargers.security import credentials

    new_password = None
    if (
        command.action == "ChangeConfiguration"
        and str(payload.get("key", "")).lower() == "authorizationkey"
    ):
        new_password = str(payload.get("value", ""))
    elif command.action == "SetVariables":  # 2.0.1 A01: SecurityCtrlr.BasicAuthPassword
        item = next(
            (
                i
                for i in payload.get("setVariableData") or []
                if credentials.is_password_variable(i)
            ),
            None,
        )
        new_password = str(item.get("attributeValue", "")) if item else None
    if new_password is not None:
        AuthorizationKeyChange.objects.create(
            charger_id=command.charger_id,
            command=command,
            password_hash=credentials.make_hash(new_password),
        )
    elif command.action in OPERATION_ACTIONS:
        details = {
            "logType": payload.get("logType"),
            "remoteLocation": (payload.get("log") or {}).get("remoteLocation"),
        }
        if command.action in ("SignedUpdateFirmware", "UpdateFirmware"):
            # 1.6 UpdateFirmware names its fields at the top level (location, retrieveDate).
            firmware = payload.get("firmware") or payload
            details = {
                "location": firmware.get("location"),
                "retrieveDateTime": firmware.get("retrieveDateTime")
                or firmware.get("retrieveDate"),
            }
        operation = ChargerOperation.objects.create(
            charger_id=command.charger_id,
            kind=OPERATION_ACTIONS[command.action],
            request_id=payload.get("requestId"),
            command=command,
            details=details,
        )
        ChargerOperationStatus.objects.create(
            operation=operation, status="Requested", source="request"
        )


@transaction.atomic
def command_security_complete(*, command_id: int, status: str, response: Any) -> None:
    """After the charger answered (or not): adopt an accepted AuthorizationKey (and only then:
    Rejected or NotSupported keeps the old password, A01.FR.03/04), note an accepted
    SecurityProfile upgrade, and add the answer to the operation's history."""
    from chargers.models import (
        AuthorizationKeyChange,
        ChargerOperation,
        ChargerOperationStatus,
        Command,
    )
    from chargers.security import credentials

    command = Command.objects.filter(pk=command_id).only("action", "payload", "charger_id").first()
    if command is None or command.action not in (
        "ChangeConfiguration",
        "SetVariables",
        "SetNetworkProfile",
        *OPERATION_ACTIONS,
    ):
        return
    answer = str(response.get("status", "")) if isinstance(response, dict) else ""
    if command.action == "SetNetworkProfile":
        # 2.0.1 A05: a profile with a higher securityProfile accepted: the upgrade is pending until
        # the charger connects with it; from then on nothing less connects (A05.FR.07, handshake).
        connection = command.payload.get("connectionData") or {}
        wanted = connection.get("securityProfile") if isinstance(connection, dict) else None
        if status == Command.Status.ANSWERED and answer == "Accepted" and isinstance(wanted, int):
            Charger.objects.filter(pk=command.charger_id, security_profile__lt=wanted).update(
                security_profile_pending=wanted
            )
        return
    if command.action == "SetVariables":
        # 2.0.1 A01.FR.03/04: the password's own setVariableResult decides.
        results = response.get("setVariableResult") if isinstance(response, dict) else None
        answer = next(
            (
                str(r.get("attributeStatus", ""))
                for r in results or []
                if credentials.is_password_variable(r)
            ),
            "",
        )
    accepted = status == Command.Status.ANSWERED and answer == "Accepted"
    now = timezone.now()
    if command.action in ("ChangeConfiguration", "SetVariables"):
        change = (
            AuthorizationKeyChange.objects.select_for_update()
            .filter(command_id=command_id, status="pending")
            .first()
        )
        if change is not None:
            if accepted:
                Charger.objects.filter(pk=command.charger_id).update(
                    ocpp_password_hash=change.password_hash, ocpp_password_set_at=now
                )
                change.status = AuthorizationKeyChange.Status.ADOPTED
            elif status in (Command.Status.ANSWERED, Command.Status.ERROR):
                change.status = (
                    AuthorizationKeyChange.Status.KEPT
                )  # Rejected, NotSupported, CALLERROR
            else:
                # The answer was lost (it disconnected, or timed out): the handshake accepts
                # whichever password it comes back with (authorization_key_adopt_open).
                change.status = AuthorizationKeyChange.Status.NO_ANSWER
            change.resolved_at = now
            change.save(update_fields=["status", "resolved_at"])
            logging.getLogger("chargers.security").warning(
                "AuthorizationKey of charger %s: %s",
                command.charger_id,
                change.get_status_display(),
            )
        elif accepted and str(command.payload.get("key", "")).lower() == "securityprofile":
            try:
                wanted = int(str(command.payload.get("value", "")))
            except ValueError:
                return
            Charger.objects.filter(pk=command.charger_id, security_profile__lt=wanted).update(
                security_profile_pending=wanted
            )
        return
    operation = ChargerOperation.objects.filter(command_id=command_id).first()
    if operation is None:
        return
    operation.status = answer or dict(Command.Status.choices).get(status, status)
    if isinstance(response, dict) and response.get("filename"):
        operation.details = {**operation.details, "filename": str(response["filename"])[:255]}
    operation.save(update_fields=["status", "details", "updated_at"])
    ChargerOperationStatus.objects.create(
        operation=operation, status=operation.status[:40], source="answer"
    )


@transaction.atomic
def operation_status_record(
    *, charger_id: int, kind: str, request_id: int | None, status: str
) -> None:
    """Add a LogStatusNotification / SignedFirmwareStatusNotification to its operation's history:
    the one with this requestId, else (1.6 makes requestId optional) the charger's latest of
    that kind; a notification nobody asked for opens a new one."""
    from chargers.models import ChargerOperation, ChargerOperationStatus

    operations = ChargerOperation.objects.select_for_update().filter(
        charger_id=charger_id, kind=kind
    )
    operation = None
    if request_id is not None:
        operation = operations.filter(request_id=request_id).order_by("-created_at", "-id").first()
    if operation is None and request_id is None:
        operation = operations.order_by("-created_at", "-id").first()
    if operation is None:
        operation = ChargerOperation.objects.create(
            charger_id=charger_id, kind=kind, request_id=request_id, status=status
        )
    else:
        operation.status = status
        operation.save(update_fields=["status", "updated_at"])
    ChargerOperationStatus.objects.create(
        operation=operation, status=status[:40], source="notification"
    )


def charger_count_violation(*, charger_id: int) -> None:
    from django.db.models import F

    Charger.objects.filter(pk=charger_id).update(schema_violations=F("schema_violations") + 1)


def charger_note_implausible(*, charger_id: int, readings: list[str]) -> None:
    """Record on the charger that it reported readings no charger can (support sees them on its
    page; the values are stored without a number, chargers.ocpp.readings)."""
    from django.db.models import F

    Charger.objects.filter(pk=charger_id).update(
        implausible_readings=F("implausible_readings") + len(readings),
        implausible_reading=", ".join(readings)[:200],
        implausible_reading_at=timezone.now(),
    )


OPEN_KEY_CHANGE_DAYS = 30


@transaction.atomic
def authorization_key_adopt_open(*, charger_id: int, password: bytes) -> bool:
    """The charger's password did not match: if it matches a new AuthorizationKey whose answer we
    never got (or are still waiting for), the charger did switch to it. Make it the password."""
    from chargers.models import AuthorizationKeyChange
    from chargers.security import credentials

    open_changes = (
        AuthorizationKeyChange.objects.select_for_update()
        .filter(
            charger_id=charger_id,
            status__in=["pending", "noanswer"],
            created_at__gte=timezone.now() - timedelta(days=OPEN_KEY_CHANGE_DAYS),
        )
        .order_by("-created_at", "-id")
    )
    for change in open_changes:
        if credentials.verify(change.password_hash, password):
            now = timezone.now()
            Charger.objects.filter(pk=charger_id).update(
                ocpp_password_hash=change.password_hash, ocpp_password_set_at=now
            )
            AuthorizationKeyChange.objects.filter(pk=change.pk).update(
                status="adopted", resolved_at=now
            )
            AuthorizationKeyChange.objects.filter(
                charger_id=charger_id, status__in=["pending", "noanswer"]
            ).exclude(pk=change.pk).update(status="kept", resolved_at=now)
            logging.getLogger("chargers.security").warning(
                "Charger %s connected with the AuthorizationKey whose answer was lost: adopted",
                charger_id,
            )
            return True
    return False
