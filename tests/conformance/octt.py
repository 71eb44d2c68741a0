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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "0123456789123456"
STATIONS = ["CP_1", "CP_A_SP1", "CP_B", "CP_C", "CP_D", "CP_E", "CP_F", "CP_G"]


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
        organization=organization, name="Conformance site",
        defaults={"address": "1 Test Street", "timezone": "Europe/Amsterdam", "currency": "EUR"},
    )
    for station_id in STATIONS:
        charger, _ = Charger.objects.get_or_create(station_id=station_id, defaults={"property": prop})
        charger.property, charger.access_mode, charger.security_profile = prop, "public", 1
        charger.license_valid_until = timezone.now().date() + timedelta(days=365)
        charger.set_ocpp_password(PASSWORD)
        charger.save()
        Connector.objects.get_or_create(charger=charger, connector_id=1)
    now = timezone.now()
    cards = {
        "100000C01": {"parent_id_tag": "GROUP001"}, "100000C39B": {"parent_id_tag": "GROUP001"},
        "D001001": {}, "D001002": {},
        "MASTERC47": {"parent_id_tag": "GROUP001"},
        "100000C06": {"blocked": True}, "100000C07": {"expires_at": now - timedelta(days=1)},
    }
    for uid, fields in cards.items():
        Token.objects.update_or_create(uid=uid, organization=organization, defaults={"type": "RFID", **fields})


# -- the operator's actions ------------------------------------------------------------------------


def _send(action: str, payload: dict[str, Any]) -> Callable[[Any], None]:
    def run(charger: Any) -> None:
        from chargers import commands

        commands.send_command_sync(charger, action, payload, source="conformance", timeout=20)

    return run




def _cancel_last_reservation(charger: Any) -> None:
    from chargers import reservations

    reservation = reservations.reservations_for(charger).first()
    if reservation is not None:
        reservations.cancel_sync(charger, reservation, source="conformance")








def _var(component: str, variable: str, instance: str = "") -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable, **({"instance": instance} if instance else {})}}


def _reserve201(evse_id: int | None = 1, group: str = "", connector_type: str = "") -> Callable[[Any], None]:
    """ReserveNow in 2.0.1 words (the tool's cards are of type Central), as the API takes it."""

    def run(charger: Any) -> None:
        from django.utils import timezone

        from chargers.ocpp.protocol import format_datetime
        from chargers.reservations import new_reservation_id

        payload: dict[str, Any] = {
            "id": new_reservation_id(), "expiryDateTime": format_datetime(timezone.now() + timedelta(seconds=30)),
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


def _profile(purpose: str, evse_id: int, *, kind: str = "Absolute", stack: int = 1, limit: float = 6.0,
             with_transaction: bool = False, profile_id: int | None = None) -> Callable[[Any], None]:
    """SetChargingProfile as the Smart charging tab or the API sends it (K01)."""

    def run(charger: Any) -> None:
        from django.utils import timezone

        from chargers.models import ChargingSession
        from chargers.ocpp.v201_smart import simple_limit_profile

        transaction_id = ""
        if with_transaction:
            for _ in range(50):
                transaction_id = ChargingSession.objects.filter(charger=charger, status="active").exclude(
                    ocpp_transaction_id="").values_list("ocpp_transaction_id", flat=True).first() or ""
                if transaction_id:
                    break
                time.sleep(0.2)
        profile = simple_limit_profile(
            profile_id=profile_id or int(time.time() * 1000) % 2**30, purpose=purpose, stack_level=stack, unit="A", limit=limit,
            start=timezone.now(), transaction_id=transaction_id, duration_s=300,
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
        found = sessions.filter(status="completed" if ended else "active").order_by("-id").values_list(
            "ocpp_transaction_id", flat=True).first()
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


def _transaction_status(*, reconnect: bool = False, with_id: bool = True, after_end: bool = False) -> Callable[[Any], None]:
    """GetTransactionStatus (E14), as chargers.stale_transactions or the API sends it."""

    def run(charger: Any) -> None:
        transaction_id = _active_transaction(charger)
        if reconnect:
            _reconnected(charger)
        if after_end:
            transaction_id = _active_transaction(charger, ended=True) or transaction_id
        _send("GetTransactionStatus", {"transactionId": transaction_id} if with_id and transaction_id else {})(charger)

    return run


def _remote_stop(charger: Any) -> None:
    transaction_id = _active_transaction(charger)
    if transaction_id:
        _send("RequestStopTransaction", {"transactionId": transaction_id})(charger)


_CARD = {"idToken": {"idToken": "D001001", "type": "Central"}, "idTokenInfo": {"status": "Accepted"}}

# Test case -> what the operator does once its charger is connected (part 6 "Manual Action" /
# "Manually request CSMS to ..." steps, where the CSMS is the one acting).
TRIGGERS: dict[str, list[Callable[[Any], None]]] = {
    "tc_b_06": [_send("GetVariables", {"getVariableData": [_var("OCPPCommCtrlr", "OfflineThreshold")]})],
    "tc_b_07": [_send("GetVariables", {"getVariableData": [_var("OCPPCommCtrlr", "OfflineThreshold"),
                                                           _var("AuthCtrlr", "AuthorizeRemoteStart")]})],
    "tc_b_08": [_send("GetVariables", {"getVariableData": [
        _var("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"), _var("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables"),
        _var("DeviceDataCtrlr", "BytesPerMessage", "GetReport"), _var("DeviceDataCtrlr", "BytesPerMessage", "GetVariables"),
        _var("AuthCtrlr", "AuthorizeRemoteStart")]})],
    "tc_b_09": [_send("SetVariables", {"setVariableData": [{**_var("OCPPCommCtrlr", "OfflineThreshold"),
                                                            "attributeValue": "123"}]})],
    "tc_b_10": [_send("SetVariables", {"setVariableData": [
        {**_var("OCPPCommCtrlr", "OfflineThreshold"), "attributeValue": "123"},
        {**_var("AuthCtrlr", "AuthorizeRemoteStart"), "attributeValue": "false"}]})],
    "tc_b_12": [_send("GetBaseReport", {"requestId": 12, "reportBase": "ConfigurationInventory"})],
    "tc_b_13": [_send("GetBaseReport", {"requestId": 13, "reportBase": "FullInventory"})],
    "tc_b_14": [_send("GetBaseReport", {"requestId": 14, "reportBase": "SummaryInventory"})],
    "tc_b_18": [_send("GetReport", {"requestId": 18, "componentCriteria": ["Problem"], "componentVariable": [
                    {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "AvailabilityState"}}]}),
                _send("GetReport", {"requestId": 19, "componentCriteria": ["Available"], "componentVariable": [
                    {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "AvailabilityState"}}]})],
    "tc_b_20": [_send("Reset", {"type": "OnIdle"})],
    "tc_b_21": [_send("Reset", {"type": "OnIdle"})],
    "tc_b_22": [_send("Reset", {"type": "Immediate"})],
    "tc_b_25": [_send("Reset", {"type": "OnIdle", "evseId": 1})],
    "tc_b_26": [_send("Reset", {"type": "OnIdle", "evseId": 1})],
    "tc_b_27": [_send("Reset", {"type": "Immediate", "evseId": 1})],
    "tc_h_01": [_reserve201(1)],
    "tc_h_07": [_reserve201(1)],
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
    "tc_k_03": [_profile("ChargingStationMaxProfile", 0)],
    "tc_k_04": [_profile("TxDefaultProfile", 1, limit=8.0, profile_id=4),
                _profile("TxDefaultProfile", 1, limit=6.0, profile_id=4)],
    "tc_k_05": [_send("ClearChargingProfile", {"chargingProfileId": 100})],
    "tc_k_06": [_send("ClearChargingProfile", {"chargingProfileCriteria": {
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1}})],
    "tc_k_08": [_send("ClearChargingProfile", {"chargingProfileCriteria": {"chargingProfilePurpose": "TxDefaultProfile"}})],
    "tc_k_10": [_profile("TxDefaultProfile", 0)],
    "tc_k_15": [_profile("TxDefaultProfile", 1)],
    "tc_k_19": [_profile("TxDefaultProfile", 1, kind="Recurring")],
    "tc_k_29": [_send("GetChargingProfiles", {"requestId": 29, "evseId": 0,
                                              "chargingProfile": {"chargingProfilePurpose": "ChargingStationMaxProfile"}})],
    "tc_k_30": [_send("GetChargingProfiles", {"requestId": 30, "evseId": 1,
                                              "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}})],
    "tc_k_31": [_send("GetChargingProfiles", {"requestId": 31, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}})],
    "tc_k_43": [_send("GetCompositeSchedule", {"duration": 300, "evseId": 1})],
    "tc_k_44": [_send("GetCompositeSchedule", {"duration": 300, "evseId": 0})],
    "tc_k_60": [_profile("TxProfile", 1, with_transaction=True)],
    "tc_k_70": [_profile("TxDefaultProfile", 1), _profile("ChargingStationMaxProfile", 0)],
    "tc_n_01": [_send("GetMonitoringReport", {"requestId": 1, "monitoringCriteria": ["DeltaMonitoring"]}),
                _send("GetMonitoringReport", {"requestId": 2, "monitoringCriteria": ["ThresholdMonitoring"]})],
    "tc_n_05": [_send("SetMonitoringBase", {"monitoringBase": "All"}),
                _send("SetMonitoringBase", {"monitoringBase": "FactoryDefault"})],
    "tc_n_08": [_send("SetVariableMonitoring", {"setMonitoringData": [{
        "value": 1, "type": "Delta", "severity": 8, "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "AvailabilityState"}}]})],
    "tc_n_16": [_send("SetMonitoringLevel", {"severity": 4})],
    "tc_n_17": [_send("SetMonitoringLevel", {"severity": 4})],
    "tc_n_47": [_send("GetMonitoringReport", {"requestId": 47})],
}


def _trigger(test_id: str, stop: threading.Event) -> None:
    """Wait until a charger of the test connects, then do the operator's actions."""
    from django.db import connections

    from chargers.models import Charger, ChargingProfile, ConnectorReservation, VariableMonitor

    # Each test case starts from a charger with nothing installed (its preconditions).
    for model in (ChargingProfile, ConnectorReservation, VariableMonitor):
        model.objects.filter(charger__station_id__in=STATIONS).delete()
    actions = TRIGGERS.get(test_id)
    if not actions:
        return
    try:
        while not stop.is_set():
            charger = next((c for c in Charger.objects.filter(station_id__in=STATIONS) if c.is_online()), None)
            if charger is not None:
                time.sleep(1.0)  # its boot and status first
                for action in actions:
                    try:
                        action(charger)
                    except Exception as exc:  # the test's verdict tells what went wrong
                        print(f"  trigger {test_id}: {exc!r}")
                return
            time.sleep(0.2)
    finally:
        connections.close_all()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _offline_all() -> None:
    from chargers.models import Charger

    # A test's socket closing marks its charger offline; wait for it so the next test's trigger
    # does not fire at the previous test's charger.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(c.is_online() for c in Charger.objects.filter(station_id__in=STATIONS)):
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--octt", required=True, help="checkout of tzi-OCTT")
    parser.add_argument("--python", required=True, help="python of a virtualenv with its requirements")
    parser.add_argument("--blocks", default="A,B,C,D,E,F,G,H,J,K,N,P")
    parser.add_argument("--timeout", default="15", help="CSMS_ACTION_TIMEOUT for the suite, seconds")
    args = parser.parse_args()
    _setup_django()
    seed()
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "SIMULATE": "0", "DEBUG": "true"}
    log = open(ROOT / f".octt-server-{port}.log", "w")
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--simulate", "0"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    suite = Path(args.octt) / "2.0.1"
    suite_env = dict(os.environ)
    # The tool's configuration is its pytest.ini (pytest-env); the same with our address.
    ini = (Path(args.octt) / "pytest.ini").read_text()
    ini = re.sub(r"CSMS_ADDRESS=.*", f"CSMS_ADDRESS=ws://127.0.0.1:{port}/ocpp", ini)
    ini = re.sub(r"CSMS_ACTION_TIMEOUT=.*", f"CSMS_ACTION_TIMEOUT={args.timeout}", ini)
    config = Path(args.octt) / "pytest-h15.ini"
    config.write_text(ini)
    totals: dict[str, list[int]] = {}
    try:
        for block in args.blocks.split(","):
            for path in sorted((suite / block).glob("test_*.py")):
                test_id = re.sub(r"^test_|_csms$", "", path.stem)
                stop = threading.Event()
                trigger = threading.Thread(target=_trigger, args=(test_id, stop), daemon=True)
                trigger.start()
                report = Path(f"/tmp/octt-{test_id}.xml")
                subprocess.run(
                    [args.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(config),
                     "--rootdir", str(Path(args.octt)), f"--junitxml={report}", str(path.relative_to(suite))],
                    cwd=suite, env=suite_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                )
                stop.set()
                trigger.join(timeout=30)
                root = ET.parse(report).getroot()
                suite_node = root if root.tag == "testsuite" else root[0]
                tests, bad = int(suite_node.get("tests", 0)), sum(
                    int(suite_node.get(k, 0)) for k in ("failures", "errors", "skipped"))
                counts = totals.setdefault(block, [0, 0])
                counts[0] += tests - bad
                counts[1] += tests
                print(f"{block} {test_id}: {'PASS' if tests and not bad else 'FAIL'}", flush=True)
                _offline_all()
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
        Path(log.name).unlink(missing_ok=True)
    print("\nblock  passed/total")
    for block, (passed, total) in totals.items():
        print(f"{block:5}  {passed}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
