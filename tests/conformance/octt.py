"""Run an independent OCPP 2.0.1 CSMS conformance suite against the real server; report passed /
total per functional block of part 6 (A Security, B Provisioning, C Authorization, D Local list,
E Transactions, F Remote control, G Availability, H Reservation, J Meter values, K Smart
charging, N Diagnostics/monitoring, P Data transfer, ...).

The suite is tzi-OCTT (github.com/AviranAbady/tzi-OCTT, pytest, 252 CSMS cases written from the
part-6 test case text, independent of this project). It is run from outside, as a charger vendor
would: its own virtualenv, its own charge point, real sockets against `manage.py serve`. It is not
part of `make test` (it needs the tool's checkout and its dependencies); results are in
docs/ocpp.md ("Conformance").

Cases in which the CSMS must act on its own (the test waits for a ReserveNow, a
SetChargingProfile, ...) are the operator's manual actions in the real test tool; `TRIGGERS`
performs them through the same service the API and portal use, once the test's charger is
connected.

    createdb -h 127.0.0.1 -U postgres h15_octt
    python3 -m venv /tmp/octt-venv && /tmp/octt-venv/bin/pip install -r <tzi-OCTT>/requirements.txt
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h15_octt .venv/bin/python -m tests.conformance.octt \\
        --octt <tzi-OCTT checkout> --python /tmp/octt-venv/bin/python --blocks A,B,C,D,E,F,G,H,J,K,N,P
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from backoffice import listen

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "0123456789123456"
STATIONS = [
    "CP_1",
    "CP_A_SP1",
    "CP_B",
    "CP_C",
    "CP_D",
    "CP_E",
    "CP_F",
    "CP_G",
    "CP_A_SP2",
    "CP_A_SP3",
]
# The tool's stations for security profiles 2 and 3 (SECURITY_PROFILE_2_CP_A, SECURITY_PROFILE_3_CP_A).
PROFILES = {"CP_A_SP2": 2, "CP_A_SP3": 3}


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()


def seed() -> None:
    """The tool's configuration (pytest.ini) as our data: stations with the password, its cards."""
    from django.core.management import call_command
    from django.utils import timezone

    from authorization.models import Token
    from backoffice.models import Organization, Property
    from chargers.models import Charger, Connector

    call_command("migrate", verbosity=0)
    organization, _ = Organization.objects.get_or_create(name="Conformance")
    prop, _ = Property.objects.get_or_create(
        organization=organization,
        name="Conformance site",
        defaults={"address": "1 Test Street", "timezone": "Europe/Amsterdam", "currency": "EUR"},
    )
    for station_id in STATIONS:
        charger, _ = Charger.objects.get_or_create(
            station_id=station_id, defaults={"property": prop}
        )
        charger.property, charger.access_mode, charger.security_profile = (
            prop,
            "public",
            PROFILES.get(station_id, 1),
        )
        charger.license_valid_until = timezone.now().date() + timedelta(days=365)
        charger.set_ocpp_password(PASSWORD)
        charger.save()
        Connector.objects.get_or_create(charger=charger, connector_id=1)
    now = timezone.now()
    cards = {
        "100000C01": {"parent_id_tag": "GROUP001"},
        "100000C39B": {"parent_id_tag": "GROUP001"},
        "D001001": {},
        "D001002": {},
        "MASTERC47": {"parent_id_tag": "GROUP001"},
        "100000C06": {"blocked": True},
        "100000C07": {"expires_at": now - timedelta(days=1)},
    }
    for uid, fields in cards.items():
        Token.objects.update_or_create(
            uid=uid, organization=organization, defaults={"type": "RFID", **fields}
        )
    # Block I: "the CSMS is configured with a tariff based on energy consumed" (TC_I_02).
    from billing.models import Rate

    Rate.objects.get_or_create(
        property=prop,
        charger=None,
        defaults={
            "valid_from": now - timedelta(days=365),
            "energy_price_per_kwh": Decimal("0.30"),
            "tax_percent": Decimal("21"),
            "prices_include_tax": True,
        },
    )


# -- the operator's actions ------------------------------------------------------------------------


def _send(action: str, payload: dict[str, Any]) -> Callable[[Any], None]:
    def run(charger: Any) -> None:
        from chargers.devices import commands

        commands.send_command_sync(charger, action, payload, source="conformance", timeout=20)

    return run


def _cancel_last_reservation(charger: Any) -> None:
    from chargers.devices import remote
    from chargers.sessions import reservations

    reservation = reservations.reservations_for(charger).first()
    if reservation is not None:
        remote.cancel_sync(charger, reservation, source="conformance")


def _var(component: str, variable: str, instance: str = "") -> dict[str, Any]:
    return {
        "component": {"name": component},
        "variable": {"name": variable, **({"instance": instance} if instance else {})},
    }


def _reserve201(
    evse_id: int | None = 1, group: str = "", connector_type: str = "", expires_in_s: int = 30
) -> Callable[[Any], None]:
    """ReserveNow in 2.0.1 words (the tool's cards are of type Central), as the API takes it."""

    def run(charger: Any) -> None:
        from django.utils import timezone

        from chargers.ocpp.protocol import format_datetime
        from chargers.sessions.reservations import new_reservation_id

        payload: dict[str, Any] = {
            "id": new_reservation_id(),
            "expiryDateTime": format_datetime(timezone.now() + timedelta(seconds=expires_in_s)),
            "idToken": {"idToken": "100000C01", "type": "Central"},
        }
        if evse_id:
            payload["evseId"] = evse_id
        if group:
            payload["groupIdToken"] = {"idToken": group, "type": "Central"}
        if connector_type:
            payload["connectorType"] = connector_type
        _send("ReserveNow", payload)(charger)

    return run


def _local_list(version: int, update: str, entries: list[dict[str, Any]]) -> Callable[[Any], None]:
    body: dict[str, Any] = {"versionNumber": version, "updateType": update}
    if entries:
        body["localAuthorizationList"] = entries
    return _send("SendLocalList", body)


def _profile(
    purpose: str,
    evse_id: int,
    *,
    kind: str = "Absolute",
    stack: int = 1,
    limit: float = 6.0,
    with_transaction: bool = False,
    profile_id: int | None = None,
) -> Callable[[Any], None]:
    """SetChargingProfile as the Smart charging tab or the API sends it (K01)."""

    def run(charger: Any) -> None:
        from django.utils import timezone

        from chargers.models import ChargingSession
        from chargers.ocpp.v201_smart import simple_limit_profile

        transaction_id = ""
        if with_transaction:
            for _ in range(50):
                transaction_id = (
                    ChargingSession.objects.filter(charger=charger, status="active")
                    .exclude(ocpp_transaction_id="")
                    .values_list("ocpp_transaction_id", flat=True)
                    .first()
                    or ""
                )
                if transaction_id:
                    break
                time.sleep(0.2)
        profile = simple_limit_profile(
            profile_id=profile_id or int(time.time() * 1000) % 2**30,
            purpose=purpose,
            stack_level=stack,
            unit="A",
            limit=limit,
            start=timezone.now(),
            transaction_id=transaction_id,
            duration_s=300,
        )
        if kind == "Recurring":
            profile["chargingProfileKind"], profile["recurrencyKind"] = "Recurring", "Daily"
        elif kind == "Relative":
            profile["chargingProfileKind"] = "Relative"
            profile["chargingSchedule"][0].pop("startSchedule")
        _send("SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile})(charger)

    return run


def _active_transaction(charger: Any, *, ended: bool = False, wait_s: float = 30) -> str:
    from chargers.models import ChargingSession

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        sessions = ChargingSession.objects.filter(charger=charger).exclude(ocpp_transaction_id="")
        found = (
            sessions.filter(status="completed" if ended else "active")
            .order_by("-id")
            .values_list("ocpp_transaction_id", flat=True)
            .first()
        )
        if found:
            return str(found)
        time.sleep(0.2)
    return ""


def _reconnected(charger: Any, wait_s: float = 30) -> None:
    """Wait until the test's charger has dropped its socket and connected again."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and charger.is_online():
        time.sleep(0.2)
        charger.refresh_from_db()
    while time.monotonic() < deadline and not charger.is_online():
        time.sleep(0.2)
        charger.refresh_from_db()
    time.sleep(1.0)


def _next_connection(charger: Any, stop: threading.Event, wait_s: float = 60) -> None:
    """Wait until the charger is connected on another socket than now (a quick reconnect may
    never look offline)."""
    previous = charger.connection_id
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not stop.is_set():
        charger.refresh_from_db()
        if charger.connection_id and charger.connection_id != previous:
            return
        time.sleep(0.2)


def _transaction_status(
    *, reconnect: bool = False, with_id: bool = True, after_end: bool = False
) -> Callable[[Any], None]:
    """GetTransactionStatus (E14), as chargers.devices.stale or the API sends it."""

    def run(charger: Any) -> None:
        transaction_id = _active_transaction(charger)
        if reconnect:
            _reconnected(charger)
        if after_end:
            transaction_id = _active_transaction(charger, ended=True) or transaction_id
        _send(
            "GetTransactionStatus",
            {"transactionId": transaction_id} if with_id and transaction_id else {},
        )(charger)

    return run


def _remote_stop(charger: Any) -> None:
    transaction_id = _active_transaction(charger)
    if transaction_id:
        _send("RequestStopTransaction", {"transactionId": transaction_id})(charger)


# -- more of the operator's actions (F, G, L, M, N, K, B) ------------------------------------------

_VALID = {"idToken": "100000C01", "type": "Central"}  # the tool's VALID_ID_TOKEN / _TYPE
_EVSE = {"id": 1}
_CONNECTOR = {"id": 1, "connectorId": 1}


def _request_id() -> int:
    from chargers.devices.remote import new_request_id

    return int(new_request_id())


def _with_request_id(action: str, payload: dict[str, Any]) -> Callable[[Any], None]:
    """An action whose requestId is new each time (GetLog, UpdateFirmware, ...), as the portal sends it."""

    def run(charger: Any) -> None:
        _send(action, {**payload, "requestId": _request_id()})(charger)

    return run


# The newest session id before the case's charger connected (set when its trigger starts).
_BEFORE_THE_CASE: dict[str, Any] = {"session": 0, "at": None}


def _new_transaction(charger: Any, wait_s: float = 30) -> str:
    """The transactionId of a session the test's charger opens from now on (not one an earlier
    case left active)."""
    from chargers.models import ChargingSession

    newest = _BEFORE_THE_CASE["session"]
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        found = (
            ChargingSession.objects.filter(charger=charger, status="active", id__gt=newest)
            .exclude(ocpp_transaction_id="")
            .values_list("ocpp_transaction_id", flat=True)
            .first()
        )
        if found:
            return str(found)
        time.sleep(0.2)
    return ""


def _display(message_id: int = 1, *, transaction: str = "", **fields: Any) -> Callable[[Any], None]:
    """SetDisplayMessage (O01/O02/O06) through the commands service, as the API sends it:
    `transaction` "new" names the transaction the test starts, "unknown" one nobody runs."""

    def run(charger: Any) -> None:
        message: dict[str, Any] = {
            "id": message_id,
            "priority": "InFront",
            "state": "Idle",
            "message": {"format": "UTF8", "content": "Welcome to the conformance site"},
            **fields,
        }
        for name in [name for name, value in message.items() if value is None]:
            del message[name]  # a case that wants the field omitted
        if transaction == "new":
            message["transactionId"] = _new_transaction(charger)
        elif transaction == "unknown":
            _new_transaction(charger)
            message["transactionId"] = "NO-SUCH-TRANSACTION"
        _send("SetDisplayMessage", {"message": message})(charger)

    return run


def _after_the_cars_schedule(then: Callable[[Any], None]) -> Callable[[Any], None]:
    """K_58/K_59's state ISO15118SmartCharging first (the car's needs, our TxProfile, the car's
    schedule), then the operator's renegotiation `then`."""

    def run(charger: Any) -> None:
        from chargers.models import ChargerNotice

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ChargerNotice.objects.filter(
                charger=charger,
                action="NotifyEVChargingSchedule",
                received_at__gte=_BEFORE_THE_CASE["at"],
            ).exists():
                break
            time.sleep(0.2)
        then(charger)

    return run


_IN_AN_HOUR = "2030-01-01T12:00:00Z"


def _remote_start(*, profile: bool = False) -> Callable[[Any], None]:
    """RequestStartTransaction (F01/F02, K05 with a TxProfile), as the API's remote start sends it."""

    def run(charger: Any) -> None:
        from chargers.ocpp.v201_commands import new_remote_start_id

        payload: dict[str, Any] = {
            "idToken": dict(_VALID),
            "remoteStartId": new_remote_start_id(),
            "evseId": 1,
        }
        if profile:
            payload["chargingProfile"] = {
                "id": int(time.time() * 1000) % 2**30,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                    }
                ],
            }
        _send("RequestStartTransaction", payload)(charger)

    return run


def _certificate_pem() -> str:
    """A CA certificate as the operator would paste it (the CSMS's own charger CA, chargers.security.pki)."""
    from chargers.security import pki

    return pki.cert_pem(pki.get_ca().certificate).decode()


def _firmware(*, install_in_s: int = 0, retrieve_in_s: int = 0) -> Callable[[Any], None]:
    """UpdateFirmware (L01) with a signing certificate and signature, as the Security tab's form sends it."""

    def run(charger: Any) -> None:
        from django.utils import timezone

        from chargers.ocpp.protocol import format_datetime

        now = timezone.now()
        firmware: dict[str, Any] = {
            "location": "https://firmware.example.com/cp-1.2.3.bin",
            "retrieveDateTime": format_datetime(now + timedelta(seconds=retrieve_in_s)),
            "signingCertificate": _certificate_pem(),
            "signature": "c2lnbmF0dXJlLW9mLXRoZS1maXJtd2FyZQ==",
        }
        if install_in_s:
            firmware["installDateTime"] = format_datetime(now + timedelta(seconds=install_in_s))
        _send("UpdateFirmware", {"requestId": _request_id(), "firmware": firmware})(charger)

    return run


def _install_certificate(kind: str) -> Callable[[Any], None]:
    def run(charger: Any) -> None:
        _send("InstallCertificate", {"certificateType": kind, "certificate": _certificate_pem()})(
            charger
        )

    return run


def _delete_installed_certificate(charger: Any) -> None:
    """M04: list the CSMS root certificates the charger holds, then delete the first one listed."""
    from chargers.devices import commands

    listed = commands.send_command_sync(
        charger,
        "GetInstalledCertificateIds",
        {"certificateType": ["CSMSRootCertificate"]},
        source="conformance",
        timeout=20,
    )
    chains = (listed.response or {}).get("certificateHashDataChain") or []
    if chains:
        _send("DeleteCertificate", {"certificateHashData": chains[0]["certificateHashData"]})(
            charger
        )


def _customer_information(
    *, report: bool, clear: bool, by: str = "idToken"
) -> Callable[[Any], None]:
    def run(charger: Any) -> None:
        payload: dict[str, Any] = {"requestId": _request_id(), "report": report, "clear": clear}
        if by == "idToken":
            payload["idToken"] = dict(_VALID)
        elif (
            by == "customerCertificate"
        ):  # N09 by the EV driver's contract certificate (its hash data)
            payload["customerCertificate"] = {
                "hashAlgorithm": "SHA256",
                "issuerNameHash": "aabbccdd" * 8,
                "issuerKeyHash": "eeff0011" * 8,
                "serialNumber": "01020304",
            }
        else:
            payload["customerIdentifier"] = "OpenChargeAlliance"
        _send("CustomerInformation", payload)(charger)

    return run


def _clear_monitors(ids: list[int]) -> Callable[[Any], None]:
    def run(charger: Any) -> None:
        from chargers.devices import remote

        remote.clear_monitors_sync(charger, ids, source="conformance")

    return run


def _cv(component: str, variable: str, evse: int | None = None) -> dict[str, Any]:
    return {
        "component": {"name": component, **({"evse": {"id": evse}} if evse else {})},
        "variable": {"name": variable},
    }


def _monitor(component: str, evse: int | None = None) -> dict[str, Any]:
    return {"value": 1, "type": "Delta", "severity": 8, **_cv(component, "AvailabilityState", evse)}


_CS_POWER, _EVSE_AVAILABILITY = _cv("ChargingStation", "Power"), _cv("EVSE", "AvailabilityState", 1)
_CS_AVAILABILITY = _cv("ChargingStation", "AvailabilityState")
_PUBLISHED = {
    "location": "https://firmware.example.com/cp-1.2.3.bin",
    "checksum": "9e107d9d372bb6826bd81d3542a419d6",
}
_NETWORK = {
    "configurationSlot": 1,
    "connectionData": {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": "wss://localhost:8082",
        "messageTimeout": 30,
        "securityProfile": 2,
        "ocppInterface": "Wired0",
    },
}


def _clear_reported_profile(charger: Any) -> None:
    """K09 then K10: ask what the charger holds, then clear the profile it reported, by its id."""
    from chargers.models import ChargingProfile

    _send(
        "GetChargingProfiles",
        {
            "requestId": _request_id(),
            "evseId": 1,
            "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"},
        },
    )(charger)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reported = ChargingProfile.objects.filter(charger=charger).order_by("-updated_at").first()
        if reported is not None:
            _send("ClearChargingProfile", {"chargingProfileId": reported.profile_id})(charger)
            return
        time.sleep(0.2)


def _accept(charger: Any) -> None:
    """The operator accepts a Pending station (its registration status in the admin): its next
    BootNotification is answered Accepted."""
    from chargers.models import Charger

    time.sleep(1.0)  # after the Pending answer to its first boot
    Charger.objects.filter(pk=charger.pk).update(registration_status=Charger.Registration.ACCEPTED)


def _password_push(charger: Any) -> None:
    """A01: a new password over OCPP, as the Security tab's "rotate over OCPP" sends it."""
    from chargers.devices.remote import authorization_key_push_sync

    authorization_key_push_sync(charger, source="conformance", timeout=20)


_CARD = {
    "idToken": {"idToken": "D001001", "type": "Central"},
    "idTokenInfo": {"status": "Accepted"},
}

# Test case -> what the operator does once its charger is connected (part 6 "Manual Action" /
# "Manually request CSMS to ..." steps, where the CSMS is the one acting).
TRIGGERS: dict[str, list[Callable[[Any], None]]] = {
    # A02/A03: the operator asks for a new charging station certificate; the charger's
    # SignCertificate is answered and signed by the CSMS (chargers.handlers.v16_security).
    "tc_a_11": [_send("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})],
    "tc_a_14": [_send("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})],
    "tc_b_02": [_accept],
    "tc_b_31": [_accept, _send("TriggerMessage", {"requestedMessage": "BootNotification"})],
    "tc_b_06": [
        _send("GetVariables", {"getVariableData": [_var("OCPPCommCtrlr", "OfflineThreshold")]})
    ],
    "tc_b_07": [
        _send(
            "GetVariables",
            {
                "getVariableData": [
                    _var("OCPPCommCtrlr", "OfflineThreshold"),
                    _var("AuthCtrlr", "AuthorizeRemoteStart"),
                ]
            },
        )
    ],
    "tc_b_08": [
        _send(
            "GetVariables",
            {
                "getVariableData": [
                    _var("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"),
                    _var("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables"),
                    _var("DeviceDataCtrlr", "BytesPerMessage", "GetReport"),
                    _var("DeviceDataCtrlr", "BytesPerMessage", "GetVariables"),
                    _var("AuthCtrlr", "AuthorizeRemoteStart"),
                ]
            },
        )
    ],
    "tc_b_09": [
        _send(
            "SetVariables",
            {
                "setVariableData": [
                    {**_var("OCPPCommCtrlr", "OfflineThreshold"), "attributeValue": "123"}
                ]
            },
        )
    ],
    "tc_b_10": [
        _send(
            "SetVariables",
            {
                "setVariableData": [
                    {**_var("OCPPCommCtrlr", "OfflineThreshold"), "attributeValue": "123"},
                    {**_var("AuthCtrlr", "AuthorizeRemoteStart"), "attributeValue": "false"},
                ]
            },
        )
    ],
    "tc_b_12": [_send("GetBaseReport", {"requestId": 12, "reportBase": "ConfigurationInventory"})],
    "tc_b_13": [_send("GetBaseReport", {"requestId": 13, "reportBase": "FullInventory"})],
    "tc_b_14": [_send("GetBaseReport", {"requestId": 14, "reportBase": "SummaryInventory"})],
    "tc_b_18": [
        _send(
            "GetReport",
            {
                "requestId": 18,
                "componentCriteria": ["Problem"],
                "componentVariable": [
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "AvailabilityState"},
                    }
                ],
            },
        ),
        _send(
            "GetReport",
            {
                "requestId": 19,
                "componentCriteria": ["Available"],
                "componentVariable": [
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "AvailabilityState"},
                    }
                ],
            },
        ),
    ],
    "tc_b_20": [_send("Reset", {"type": "OnIdle"})],
    "tc_b_21": [_send("Reset", {"type": "OnIdle"})],
    "tc_b_22": [_send("Reset", {"type": "Immediate"})],
    "tc_b_25": [_send("Reset", {"type": "OnIdle", "evseId": 1})],
    "tc_b_26": [_send("Reset", {"type": "OnIdle", "evseId": 1})],
    "tc_b_27": [_send("Reset", {"type": "Immediate", "evseId": 1})],
    "tc_h_01": [_reserve201(1)],
    "tc_h_07": [_reserve201(1, expires_in_s=5)],  # the tool's TRANSACTION_DURATION
    "tc_h_08": [_reserve201(None)],
    "tc_h_14": [_reserve201(None)],
    "tc_h_15": [_reserve201(None, connector_type="cType2")],
    "tc_h_17": [_reserve201(1), _cancel_last_reservation],
    "tc_h_19": [_reserve201(1, group="GROUP001")],
    "tc_h_20": [_reserve201(1)],
    "tc_h_22": [_reserve201(1)],
    "tc_d_01": [_local_list(2, "Full", [_CARD])],
    "tc_d_02": [_send("GetLocalListVersion", {}), _local_list(2, "Differential", [_CARD])],
    "tc_d_03": [_local_list(2, "Differential", [{"idToken": _CARD["idToken"]}])],
    "tc_d_04": [_local_list(2, "Full", [])],
    "tc_d_08": [_send("GetLocalListVersion", {})],
    "tc_d_09": [_send("GetLocalListVersion", {})],
    "tc_e_21": [_remote_stop],
    "tc_e_29": [_transaction_status(reconnect=True)],
    "tc_e_30": [_transaction_status()],
    "tc_e_31": [_transaction_status(reconnect=True, after_end=True)],
    "tc_e_33": [_transaction_status(reconnect=True, with_id=False)],
    "tc_e_34": [_transaction_status(with_id=False)],
    "tc_c_37": [_send("ClearCache", {})],
    "tc_c_38": [_send("ClearCache", {})],
    "tc_k_01": [_profile("TxDefaultProfile", 1)],
    "tc_k_02": [_profile("TxProfile", 1, with_transaction=True)],
    "tc_k_03": [_profile("ChargingStationMaxProfile", 0, limit=8.0)],
    "tc_k_04": [
        _profile("TxDefaultProfile", 1, limit=8.0, profile_id=4),
        _profile("TxDefaultProfile", 1, limit=6.0, profile_id=4),
    ],
    "tc_k_05": [_clear_reported_profile],
    "tc_k_06": [
        _send(
            "ClearChargingProfile",
            {
                "chargingProfileCriteria": {
                    "evseId": 1,
                    "chargingProfilePurpose": "TxDefaultProfile",
                    "stackLevel": 1,
                }
            },
        )
    ],
    "tc_k_08": [
        _send(
            "ClearChargingProfile",
            {
                "chargingProfileCriteria": {
                    "evseId": 1,
                    "chargingProfilePurpose": "TxDefaultProfile",
                    "stackLevel": 1,
                }
            },
        )
    ],
    "tc_k_10": [_profile("TxDefaultProfile", 0)],
    "tc_k_15": [_profile("TxDefaultProfile", 1)],
    "tc_k_19": [_profile("TxDefaultProfile", 1, kind="Recurring")],
    "tc_k_29": [
        _send(
            "GetChargingProfiles",
            {
                "requestId": 29,
                "evseId": 0,
                "chargingProfile": {"chargingProfilePurpose": "ChargingStationMaxProfile"},
            },
        )
    ],
    "tc_k_30": [
        _send(
            "GetChargingProfiles",
            {
                "requestId": 30,
                "evseId": 1,
                "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"},
            },
        )
    ],
    "tc_k_31": [
        _send(
            "GetChargingProfiles",
            {"requestId": 31, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}},
        )
    ],
    "tc_k_43": [
        _send("GetCompositeSchedule", {"duration": 300, "evseId": 1, "chargingRateUnit": "A"})
    ],
    "tc_k_44": [
        _send("GetCompositeSchedule", {"duration": 300, "evseId": 0, "chargingRateUnit": "A"})
    ],
    "tc_k_60": [_profile("TxProfile", 1, with_transaction=True)],
    "tc_k_52": [_send("GetChargingProfiles", {"requestId": 52, "chargingProfile": {}})],
    "tc_k_58": [_after_the_cars_schedule(_profile("TxProfile", 1, with_transaction=True, stack=2))],
    "tc_k_59": [_after_the_cars_schedule(_profile("TxProfile", 1, with_transaction=True, stack=2))],
    "tc_k_70": [_profile("TxDefaultProfile", 1), _profile("ChargingStationMaxProfile", 0)],
    "tc_n_01": [
        _send("GetMonitoringReport", {"requestId": 1, "monitoringCriteria": ["DeltaMonitoring"]}),
        _send(
            "GetMonitoringReport", {"requestId": 2, "monitoringCriteria": ["ThresholdMonitoring"]}
        ),
    ],
    "tc_n_05": [
        _send("SetMonitoringBase", {"monitoringBase": "All"}),
        _send("SetMonitoringBase", {"monitoringBase": "FactoryDefault"}),
        _send("SetMonitoringBase", {"monitoringBase": "HardWiredOnly"}),
    ],
    "tc_n_08": [
        _send(
            "SetVariableMonitoring",
            {
                "setMonitoringData": [
                    {
                        "value": 1,
                        "type": "Delta",
                        "severity": 8,
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "AvailabilityState"},
                    }
                ]
            },
        )
    ],
    "tc_n_16": [_send("SetMonitoringLevel", {"severity": 4})],
    "tc_n_17": [_send("SetMonitoringLevel", {"severity": 4})],
    "tc_n_47": [_send("GetMonitoringReport", {"requestId": 47})],
    "tc_a_09": [_password_push],
    "tc_a_10": [_password_push],
    "tc_f_01": [_remote_start()],
    "tc_f_02": [_remote_start()],
    "tc_f_03": [_remote_start()],
    "tc_f_04": [_remote_start()],
    "tc_f_06": [_send("UnlockConnector", {"evseId": 1, "connectorId": 1})],
    "tc_f_11": [_send("TriggerMessage", {"requestedMessage": "MeterValues", "evse": _EVSE})],
    "tc_f_12": [_send("TriggerMessage", {"requestedMessage": "MeterValues"})],
    "tc_f_13": [_send("TriggerMessage", {"requestedMessage": "TransactionEvent", "evse": _EVSE})],
    "tc_f_14": [_send("TriggerMessage", {"requestedMessage": "TransactionEvent"})],
    "tc_f_15": [_send("TriggerMessage", {"requestedMessage": "LogStatusNotification"})],
    "tc_f_18": [_send("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})],
    "tc_f_20": [_send("TriggerMessage", {"requestedMessage": "Heartbeat"})],
    "tc_f_23": [
        _send("TriggerMessage", {"requestedMessage": "StatusNotification", "evse": _CONNECTOR})
    ],
    "tc_f_24": [
        _send("TriggerMessage", {"requestedMessage": "StatusNotification", "evse": _CONNECTOR})
    ],
    "tc_f_27": [_send("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})],
    "tc_g_03": [_send("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": _EVSE})],
    "tc_g_04": [_send("ChangeAvailability", {"operationalStatus": "Operative", "evse": _EVSE})],
    "tc_g_05": [_send("ChangeAvailability", {"operationalStatus": "Inoperative"})],
    "tc_g_06": [_send("ChangeAvailability", {"operationalStatus": "Operative"})],
    "tc_g_07": [
        _send("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": _CONNECTOR})
    ],
    "tc_g_08": [
        _send("ChangeAvailability", {"operationalStatus": "Operative", "evse": _CONNECTOR})
    ],
    "tc_g_11": [_send("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": _EVSE})],
    "tc_g_14": [_send("ChangeAvailability", {"operationalStatus": "Inoperative"})],
    "tc_g_17": [
        _send("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": _CONNECTOR})
    ],
    "tc_l_01": [_firmware()],
    "tc_l_02": [_firmware(install_in_s=60)],
    "tc_l_03": [_firmware(retrieve_in_s=60)],
    **{f"tc_l_{n:02d}": [_firmware()] for n in (4, 5, 6, 7, 8, 9, 13)},
    "tc_l_10": [_firmware(), _firmware()],
    "tc_l_11": [_firmware(), _firmware()],
    "tc_m_01": [_install_certificate("CSMSRootCertificate")],
    "tc_m_02": [_install_certificate("ManufacturerRootCertificate")],
    "tc_m_03": [_install_certificate("V2GRootCertificate")],
    "tc_m_04": [_install_certificate("MORootCertificate")],
    "tc_m_05": [_install_certificate("CSMSRootCertificate")],
    "tc_m_12": [_send("GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]})]
    * 3,
    "tc_m_13": [
        _send("GetInstalledCertificateIds", {"certificateType": ["ManufacturerRootCertificate"]})
    ],
    "tc_m_14": [_send("GetInstalledCertificateIds", {"certificateType": ["V2GRootCertificate"]})],
    "tc_m_15": [_send("GetInstalledCertificateIds", {"certificateType": ["V2GCertificateChain"]})],
    "tc_m_16": [_send("GetInstalledCertificateIds", {"certificateType": ["MORootCertificate"]})],
    "tc_m_17": [
        _send(
            "GetInstalledCertificateIds",
            {"certificateType": ["CSMSRootCertificate", "ManufacturerRootCertificate"]},
        )
    ],
    "tc_m_18": [_send("GetInstalledCertificateIds", {})],
    "tc_m_19": [
        _send("GetInstalledCertificateIds", {"certificateType": ["ManufacturerRootCertificate"]})
    ],
    "tc_m_20": [_install_certificate("CSMSRootCertificate"), _delete_installed_certificate],
    "tc_m_21": [_install_certificate("CSMSRootCertificate"), _delete_installed_certificate],
    "tc_n_02": [
        _send("GetMonitoringReport", {"requestId": 21, "componentVariable": [_CS_POWER]}),
        _send(
            "GetMonitoringReport",
            {"requestId": 22, "componentVariable": [_CS_POWER, _EVSE_AVAILABILITY]},
        ),
    ],
    "tc_n_03": [
        _send(
            "GetMonitoringReport",
            {
                "requestId": 31,
                "monitoringCriteria": ["DeltaMonitoring"],
                "componentVariable": [_EVSE_AVAILABILITY],
            },
        ),
        _send(
            "GetMonitoringReport",
            {
                "requestId": 32,
                "monitoringCriteria": ["ThresholdMonitoring"],
                "componentVariable": [_CS_POWER],
            },
        ),
    ],
    "tc_n_60": [
        _send(
            "GetMonitoringReport",
            {
                "requestId": 601,
                "monitoringCriteria": ["DeltaMonitoring"],
                "componentVariable": [_CS_AVAILABILITY, _EVSE_AVAILABILITY],
            },
        ),
        _send(
            "GetMonitoringReport",
            {
                "requestId": 602,
                "monitoringCriteria": ["ThresholdMonitoring"],
                "componentVariable": [_CS_AVAILABILITY, _EVSE_AVAILABILITY],
            },
        ),
    ],
    "tc_n_09": [
        _send(
            "SetVariableMonitoring",
            {"setMonitoringData": [_monitor("EVSE", 1), _monitor("ChargingStation")]},
        )
    ],
    "tc_n_18": [_clear_monitors([1, 2, 3, 4, 5])],
    "tc_n_44": [_clear_monitors([1])],
    "tc_n_25": [
        _with_request_id(
            "GetLog",
            {
                "logType": "DiagnosticsLog",
                "log": {"remoteLocation": "https://logs.example.com/upload"},
            },
        )
    ],
    "tc_n_34": [
        _with_request_id(
            "GetLog",
            {
                "logType": "DiagnosticsLog",
                "log": {"remoteLocation": "https://logs.example.com/upload"},
            },
        )
    ],
    "tc_n_35": [
        _with_request_id(
            "GetLog",
            {
                "logType": "SecurityLog",
                "log": {"remoteLocation": "https://logs.example.com/upload"},
            },
        )
    ],
    "tc_n_36": [
        _with_request_id(
            "GetLog",
            {
                "logType": "DiagnosticsLog",
                "log": {"remoteLocation": "https://logs.example.com/upload"},
            },
        ),
        _with_request_id(
            "GetLog",
            {
                "logType": "DiagnosticsLog",
                "log": {"remoteLocation": "https://logs.example.com/upload"},
            },
        ),
    ],
    "tc_n_27": [_customer_information(report=True, clear=False)],
    "tc_n_28": [_customer_information(report=True, clear=False)],
    "tc_n_29": [_customer_information(report=True, clear=False)],
    "tc_n_30": [_customer_information(report=True, clear=True)],
    "tc_n_31": [_customer_information(report=True, clear=True)],
    "tc_n_32": [_customer_information(report=False, clear=True)],
    "tc_n_62": [_customer_information(report=True, clear=True, by="customerIdentifier")],
    "tc_n_63": [_customer_information(report=True, clear=True, by="customerCertificate")],
    # L03/L04: a local controller publishes firmware to the stations behind it, then stops.
    **{f"tc_l_{n}": [_with_request_id("PublishFirmware", _PUBLISHED)] for n in (17, 19, 20, 24)},
    **{
        f"tc_l_{n}": [_send("UnpublishFirmware", {"checksum": _PUBLISHED["checksum"]})]
        for n in (21, 22, 23)
    },
    "tc_n_46": [
        _customer_information(report=True, clear=True),
        _local_list(2, "Differential", [{"idToken": dict(_VALID)}]),
    ],
    "tc_k_32": [
        _profile("TxDefaultProfile", 1, profile_id=32),
        _send(
            "GetChargingProfiles", {"requestId": 32, "chargingProfile": {"chargingProfileId": [32]}}
        ),
    ],
    "tc_k_33": [
        _send(
            "GetChargingProfiles",
            {"requestId": 33, "evseId": 1, "chargingProfile": {"stackLevel": 1}},
        )
    ],
    "tc_k_34": [
        _send(
            "GetChargingProfiles",
            {"requestId": 34, "evseId": 1, "chargingProfile": {"chargingLimitSource": ["CSO"]}},
        )
    ],
    "tc_k_35": [
        _send(
            "GetChargingProfiles",
            {
                "requestId": 35,
                "evseId": 1,
                "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"},
            },
        )
    ],
    "tc_k_36": [
        _send(
            "GetChargingProfiles",
            {
                "requestId": 36,
                "evseId": 1,
                "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1},
            },
        )
    ],
    "tc_k_37": [_remote_start(profile=True)],
    "tc_a_12": [_send("TriggerMessage", {"requestedMessage": "SignV2GCertificate"})],
    "tc_a_13": [_send("TriggerMessage", {"requestedMessage": "SignCombinedCertificate"})],
    "tc_b_42": [_send("SetNetworkProfile", _NETWORK)],
    # O: display messages (the operator sends them; the API's commands endpoint does the same).
    "tc_o_01": [_display()],
    "tc_o_02": [_display(), _send("GetDisplayMessages", {"requestId": 2})],
    "tc_o_03": [_send("GetDisplayMessages", {"requestId": 3})],
    "tc_o_04": [_display(), _send("ClearDisplayMessage", {"id": 1})],
    "tc_o_05": [_send("ClearDisplayMessage", {"id": 5})],
    "tc_o_06": [_display(transaction="new", state=None)],
    "tc_o_07": [_display(), _send("GetDisplayMessages", {"requestId": 7, "id": [1]})],
    "tc_o_08": [_display(), _send("GetDisplayMessages", {"requestId": 8, "priority": "InFront"})],
    "tc_o_09": [_display(), _send("GetDisplayMessages", {"requestId": 9, "state": "Idle"})],
    "tc_o_10": [_display(transaction="unknown", state=None)],
    "tc_o_11": [_display(), _send("GetDisplayMessages", {"requestId": 11, "id": [2]})],
    "tc_o_12": [_display(), _display(message={"format": "UTF8", "content": "Replaced"})],
    "tc_o_13": [_display(startDateTime=_IN_AN_HOUR)],
    "tc_o_14": [_display(endDateTime=_IN_AN_HOUR)],
    "tc_o_17": [_display(priority="AlwaysFront")],
    "tc_o_18": [_display(state="Unavailable")],
    "tc_o_19": [_display(message={"format": "HTML", "content": "<b>Welcome</b>"})],
    "tc_o_25": [_display(state="Charging")],
    "tc_o_26": [_display(priority="NormalCycle")],
    "tc_o_27": [_display(transaction="new", state=None, startDateTime=_IN_AN_HOUR)],
    "tc_o_28": [_display(transaction="new", state=None, endDateTime=_IN_AN_HOUR)],
    "tc_b_44": [_send("SetNetworkProfile", _NETWORK)],
}

# The registration status the operator has given the tool's stations before a case (B02/B03).
REGISTRATION = {"tc_b_02": "Pending", "tc_b_30": "Pending", "tc_b_31": "Pending"}


def _items_per_get_variables(value: str) -> Callable[[Any], None]:
    """B_08's configuration state: the CSMS has DeviceDataCtrlr.ItemsPerMessage[GetVariables]
    from an earlier GetVariables answer (stored as one is, chargers.devices.variables)."""

    def run(charger: Any) -> None:
        from chargers.devices.variables import device_variables_from_get

        device_variables_from_get(
            charger_id=charger.pk,
            results=[
                {
                    "attributeStatus": "Accepted",
                    "component": {"name": "DeviceDataCtrlr"},
                    "variable": {"name": "ItemsPerMessage", "instance": "GetVariables"},
                    "attributeValue": value,
                }
            ],
        )

    return run


# What the CSMS knows before a case starts (its "Configuration State"), per station.
CONFIGURATION_STATE = {"tc_b_08": [_items_per_get_variables("4")]}

# Cases that run their scenario several times, each on a new connection (M_20: once per hash
# algorithm).
REPEATS = {"tc_m_20": 3}


def _trigger(test_id: str, stop: threading.Event) -> None:
    """Wait until a charger of the test connects, then do the operator's actions."""
    from django.db import connections

    # A thread's connection is a slot of the bounded pool until it is closed: give it back on
    # every way out (a case without actions returned early and kept its slot; 12 such cases
    # emptied the pool).
    try:
        _prepare_and_act(test_id, stop)
    finally:
        connections.close_all()


def _prepare_and_act(test_id: str, stop: threading.Event) -> None:
    from django.db import connections
    from django.utils import timezone

    from chargers.models import Charger, ChargingProfile, ConnectorReservation, VariableMonitor

    # Each test case starts from a charger with nothing installed and the tool's password (its
    # preconditions; A_09 changes the password).
    for model in (ChargingProfile, ConnectorReservation, VariableMonitor):
        model.objects.filter(charger__station_id__in=STATIONS).delete()
    for charger in Charger.objects.filter(station_id__in=STATIONS):
        if not charger.check_ocpp_password(PASSWORD):
            charger.set_ocpp_password(PASSWORD)
            charger.save(update_fields=["ocpp_password_hash", "ocpp_password_set_at"])
    # B_02/B_30/B_31: the operator has set the station to Pending (the charger's registration
    # status in the admin); every other case starts Accepted.
    Charger.objects.filter(station_id__in=STATIONS).update(
        registration_status=REGISTRATION.get(test_id, "Accepted")
    )
    for charger in Charger.objects.filter(station_id__in=STATIONS):
        for state in CONFIGURATION_STATE.get(test_id, []):
            state(charger)
    actions = TRIGGERS.get(test_id)
    if not actions:
        return
    from chargers.models import ChargingSession

    _BEFORE_THE_CASE["session"] = (
        ChargingSession.objects.order_by("-id").values_list("id", flat=True).first() or 0
    )
    _BEFORE_THE_CASE["at"] = timezone.now()
    rounds = REPEATS.get(test_id, 1)
    try:
        while not stop.is_set():
            charger = next(
                (c for c in Charger.objects.filter(station_id__in=STATIONS) if c.is_online()), None
            )
            if charger is not None:
                time.sleep(1.0)  # its boot and status first
                for action in actions:
                    try:
                        action(charger)
                    except Exception as exc:  # the test's verdict tells what went wrong
                        print(f"  trigger {test_id}: {exc!r}")
                rounds -= 1
                if rounds <= 0:
                    return
                _next_connection(charger, stop)  # the case runs again on a new connection
                continue
            time.sleep(0.2)
    finally:
        connections.close_all()


def _tls_setup(
    octt: Path, app_port: int, tls_port: int
) -> tuple[dict[str, str], dict[str, str], subprocess.Popen[bytes]]:
    """The test lab's TLS (block A): HAProxy with deploy/haproxy/ocpp.cfg in front of the server
    (as in production) and a lab PKI from chargers.security.pki: a CA (the server's OCPP_CA_DIR, so it
    signs the charger's CSRs and trusts what it signed), server certificates for localhost and a
    client certificate for the tool's profile-3 station (CN = station id, as the handshake
    requires), configured in the tool as its TLS_CA_CERT / TLS_CLIENT_CERT. The tool's own CA
    cannot be used: it has no keyUsage extension, which RFC 5280 requires of a CA and the
    CSMS's certificate path validation enforces. Its invalid client certificate stays (foreign to
    the lab CA). Returns the server's environment, the tool's settings and the HAProxy process."""
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from chargers.security import pki

    certs, work = octt / "certs", Path(tempfile.mkdtemp(prefix="octt-tls-"))
    authority = pki.load_or_create(work / "ca")
    ca_pem = pki.cert_pem(authority.certificate)
    for kind in ("ecdsa", "rsa"):
        key, certificate = authority.issue_server_certificate(
            ["localhost", "127.0.0.1"], key=pki.new_key("rsa" if kind == "rsa" else "ec")
        )
        (work / f"server-{kind}.pem").write_bytes(
            pki.cert_pem(certificate) + ca_pem + pki.key_pem(key)
        )
    station = next(s for s, profile in PROFILES.items() if profile == 3)
    client_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, station),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Conformance"),
                ]
            )
        )
        .sign(client_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    (work / "client.pem").write_text(authority.sign_csr(csr, station_id=station).certificate_pem)
    (work / "client.key").write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    haproxy = subprocess.Popen(
        ["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy" / "ocpp.cfg")],
        env={
            **os.environ,
            "OCPP_TLS_BIND": f"127.0.0.1:{tls_port}",
            "OCPP_TLS_CERT_DIR": str(work),
            "OCPP_CA_DIR": str(work / "ca"),
            "OCPP_APP_ADDR": f"127.0.0.1:{app_port}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server_env = {"OCPP_CA_DIR": str(work / "ca"), "OCPP_TRUSTED_PROXIES": "127.0.0.1"}
    tool = {
        "CSMS_WSS_ADDRESS": f"wss://localhost:{tls_port}/ocpp",
        "TLS_CA_CERT": str(work / "ca" / "ca.pem"),
        "TLS_CLIENT_CERT": str(work / "client.pem"),
        "TLS_CLIENT_KEY": str(work / "client.key"),
        "TLS_INVALID_CLIENT_CERT": str(certs / "invalid_client.pem"),
        "TLS_INVALID_CLIENT_KEY": str(certs / "invalid_client.key"),
    }
    return server_env, tool, haproxy


def _v2g_hierarchy(ca_dir: str) -> None:
    """A_12/A_13 ("the CSMS supports ISO 15118"): the operator has installed our local V2G root
    for the organization (the admin action, pki.services), in the server's CA folder, so the
    server signs V2G certificates that chain to it."""
    from django.conf import settings

    from backoffice.models import Organization
    from pki.services import local_v2g_root_install

    settings.OCPP_CA_DIR = ca_dir
    organization = Organization.objects.get(name="Conformance")
    try:
        local_v2g_root_install(organization_id=organization.pk)
    except Exception as exc:  # installed by an earlier run: the same root
        print(f"  V2G root: {exc}")


class _LabProvider:
    """The test lab's PKI provider, the secondary actor of M01/M02 that the tool does not run:
    it answers `POST /ev-certificates` (docs/pki.md, "The PKI provider's interface") with
    Accepted and a fixed base64 stream standing for the EXI CertificateInstallationRes, and keeps
    what it was sent, so the run shows the car's request reached it unchanged."""

    ANSWER = base64.b64encode(b"\x80\x98lab-provider-certificate-installation-res").decode()

    def __init__(self) -> None:
        from tests.pki.pkitools import Provider

        self.stub = Provider({"status": "Accepted", "exiResponse": self.ANSWER})
        self.url = f"http://127.0.0.1:{self.stub.port}/pki"

    @property
    def received(self) -> list[dict[str, Any]]:
        return self.stub.bodies

    def configure(self) -> str:
        """Make it the Conformance organization's provider (staff allow-list its address, as
        for any provider on a private address); return the allow-list entry for the server."""
        from django.conf import settings

        from backoffice.models import Organization
        from pki.models import PkiSettings
        from pki.services import settings_save

        allowed = self.url.split("/")[2]
        settings.OUTBOUND_URL_ALLOWLIST = [*settings.OUTBOUND_URL_ALLOWLIST, allowed]
        organization = Organization.objects.get(name="Conformance")
        signer = (
            PkiSettings.objects.filter(organization=organization)
            .values_list("v2g_signer", flat=True)
            .first()
        )
        settings_save(
            organization_id=organization.pk,
            provider_url=self.url,
            provider_token="lab-provider-token",
            v2g_signer=signer if signer is not None else PkiSettings.V2gSigner.NONE,
        )
        return allowed

    def stop(self) -> None:
        self.stub.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _offline_all() -> None:
    from chargers.models import Charger

    # A test's socket closing marks its charger offline; wait for it so the next test's trigger
    # does not fire at the previous test's charger.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        c.is_online() for c in Charger.objects.filter(station_id__in=STATIONS)
    ):
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--octt", required=True, help="checkout of tzi-OCTT")
    parser.add_argument(
        "--python", required=True, help="python of a virtualenv with its requirements"
    )
    parser.add_argument("--blocks", default="A,B,C,D,E,F,G,H,J,K,N,P")
    parser.add_argument(
        "--tls", action="store_true", help="block A's TLS cases through HAProxy (needs haproxy)"
    )
    parser.add_argument(
        "--cases", default="", help="comma list of test ids (tc_f_01,...) to run only"
    )
    parser.add_argument(
        "--timeout", default="15", help="CSMS_ACTION_TIMEOUT for the suite, seconds"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="the server's port (HAProxy's TLS port is the next one); default: free ones",
    )
    args = parser.parse_args()
    _setup_django()
    seed()
    port = args.port or _free_port()
    env = {**os.environ, "PORT": str(port), "SIMULATE": "0", "DEBUG": "true"}
    tool_settings: dict[str, str] = {}
    haproxy = None
    if args.tls:
        server_tls, tool_settings, haproxy = _tls_setup(
            Path(args.octt), port, port + 1 if args.port else _free_port()
        )
        env.update(server_tls)
        _v2g_hierarchy(server_tls["OCPP_CA_DIR"])
    lab = _LabProvider()
    allow = [a for a in os.environ.get("OUTBOUND_URL_ALLOWLIST", "").split(",") if a]
    env["OUTBOUND_URL_ALLOWLIST"] = ",".join([*allow, lab.configure()])
    log = open(ROOT / f".octt-server-{port}.log", "w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--simulate", "0"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if listen.serving("127.0.0.1", port):  # answering, not only listening
            break
        time.sleep(0.2)
    suite = Path(args.octt) / "2.0.1"
    suite_env = dict(os.environ)
    # The tool's configuration is its pytest.ini (pytest-env); the same with our address.
    ini = (Path(args.octt) / "pytest.ini").read_text()
    ini = re.sub(r"CSMS_ADDRESS=.*", f"CSMS_ADDRESS=ws://127.0.0.1:{port}/ocpp", ini)
    ini = re.sub(r"CSMS_ACTION_TIMEOUT=.*", f"CSMS_ACTION_TIMEOUT={args.timeout}", ini)
    # C_02 wants an unknown idToken; the tool's configured type for it ("Cash") is not an
    # IdTokenEnumType, so its Authorize is refused by the schema before the token is looked at.
    ini = re.sub(r"INVALID_ID_TOKEN_TYPE=.*", "INVALID_ID_TOKEN_TYPE=ISO14443", ini)
    # The tool's fixtures are named relative to its checkout; its cases run in 2.0.1/.
    ini = re.sub(r"=certs/", f"={Path(args.octt).resolve()}/certs/", ini)
    for name, value in tool_settings.items():
        ini = re.sub(rf"(?m)^(\s*){name}=.*$", rf"\g<1>{name}={value}", ini)
    config = Path(args.octt) / "pytest-h15.ini"
    config.write_text(ini)
    totals: dict[str, list[int]] = {}
    try:
        for block in args.blocks.split(","):
            for path in sorted((suite / block).glob("test_*.py")):
                test_id = re.sub(r"^test_|_csms$", "", path.stem)
                if args.cases and test_id not in args.cases.split(","):
                    continue
                stop = threading.Event()
                trigger = threading.Thread(target=_trigger, args=(test_id, stop), daemon=True)
                trigger.start()
                report = Path(f"/tmp/octt-{test_id}.xml")
                subprocess.run(
                    [
                        args.python,
                        "-m",
                        "pytest",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        "-c",
                        str(config),
                        "--rootdir",
                        str(Path(args.octt)),
                        f"--junitxml={report}",
                        str(path.relative_to(suite)),
                    ],
                    cwd=suite,
                    env=suite_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=300,
                )
                stop.set()
                trigger.join(timeout=30)
                root = ET.parse(report).getroot()
                suite_node = root if root.tag == "testsuite" else root[0]
                tests, bad = (
                    int(suite_node.get("tests", 0)),
                    sum(int(suite_node.get(k, 0)) for k in ("failures", "errors", "skipped")),
                )
                counts = totals.setdefault(block, [0, 0])
                counts[0] += tests - bad
                counts[1] += tests
                print(f"{block} {test_id}: {'PASS' if tests and not bad else 'FAIL'}", flush=True)
                _offline_all()
    finally:
        server.terminate()
        server.wait(timeout=20)
        lab.stop()
        if lab.received:
            print(f"\nthe lab's PKI provider was asked {len(lab.received)} times", flush=True)
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(timeout=10)
        log.close()
        Path(log.name).unlink(missing_ok=True)
    print("\nblock  passed/total")
    for block, (passed, total) in totals.items():
        print(f"{block:5}  {passed}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
