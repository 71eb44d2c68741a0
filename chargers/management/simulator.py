"""A simulated OCPP 1.6J charger speaking real frames over a websocket.

Used by `manage.py simulate_chargers`, by `make run` (a few live chargers for newcomers),
by the end-to-end tests and as the load generator of the benchmarks. It never imports
Django, so the benchmarks can run it in a separate process without settings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import random
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from chargers.management.ocmf_meter import SigningMeter, change_one_digit, oca_public_key
from chargers.management.ocmf_meter import signed_meter_value as smv
from chargers.management.sim_profiles import Held, Profiles
from chargers.ocpp import protocol, protocol201
from chargers.ocpp.protocol import OcppError

# The cards the demo's simulated chargers present: load_demo's resident cards, which every demo
# charger accepts (own cards; the Residents group at the private DEMO-004). A fresh `make run`
# thus starts without a refused card on the dashboard (issue 47 item 1); pass `--id-tag` to
# simulate_chargers to present others (an unknown UID is refused until added under Tokens).
DEMO_CARDS = ("DEMO-CARD-1", "DEMO-CARD-2")

logger = logging.getLogger("simulator")


def demo_password(secret: str, station_id: str) -> str:
    """Return the OCPP password of a demo charger: derived from the server's SECRET_KEY, so
    `load_demo` and the simulators agree without it being written anywhere (40 hex digits)."""
    return hmac.new(
        secret.encode(), f"demo-ocpp-password:{station_id}".encode(), hashlib.sha256
    ).hexdigest()[:40]


def tls_context(
    ca_file: str, certificate_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """Return a TLS 1.2+ client context trusting `ca_file`, with a client certificate for
    security profile 3 when `certificate_file` (and its `key_file`) is given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate_file:
        context.load_cert_chain(certificate_file, key_file)
    return context


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# What a simulated charger answers a CALL: (response, follow-up). The response None answers
# NotSupported (a CALLERROR); the follow-up runs once the answer is out.
Answer = tuple[dict | None, Awaitable[Any] | None]


class CallError(Exception):
    def __init__(self, code: str, description: str):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


@dataclass
class ConnectorState:
    connector_id: int
    status: str = "Available"
    transaction_id: int | None = None
    id_tag: str = ""
    meter_wh: int = 0
    power_kw: float = 0.0
    started_at: datetime | None = None  # of the running transaction (Relative profiles)
    ev_max_a: float | None = None  # the car plugged in here draws at most this (A per phase)


@dataclass
class SimulatedCharger:
    url: str  # ws://host:port/ocpp, or wss:// with `ssl`
    station_id: str
    # HTTP Basic password; bytes for a binary AuthorizationKey (sent raw, OCPP-J 1.6 §6).
    password: str | bytes | None = None
    # TLS (security profiles 2 and 3): trust anchors and, for profile 3, the client certificate.
    ssl: ssl.SSLContext | None = None
    connectors: int = 1
    id_tags: list[str] = field(default_factory=lambda: ["DEMO-CARD-1"])
    meter_interval: float = 10.0
    session_seconds: tuple[float, float] = (60.0, 180.0)
    idle_seconds: tuple[float, float] = (20.0, 60.0)
    power_kw: float = 7.4
    remote_start_accept: bool = True
    auto_sessions: bool = True
    # Simulated sessions never take the last free ports: a newcomer trying the guest flow on the
    # demo always finds this many ports free (issue 35 item 17). 0: every port may be busy.
    keep_free: int = 1
    call_timeout: float = 30.0
    # The electrical side (issue 38): a car draws min(its maximum, the profile limit in force).
    # Its maximum is `ev_max_a` per phase, or `power_kw` over `phases` at `voltage`.
    phases: int = 1
    voltage: float = 230.0
    ev_max_a: float | None = None
    profile_accept: bool = True  # False: every SetChargingProfile is answered Rejected
    # The units it takes in a profile ("A", "W" or "A,W"): a profile in another is Rejected.
    # 1.6 ChargingScheduleAllowedChargingRateUnit reports them (Current / Power).
    rate_units: str = "A,W"
    # A calibrated meter signing its readings (OCMF, ECDSA P-256; ocmf_meter.generate_key()):
    # signed start and end as the OCA "Signed Meter Values in OCPP" note puts them.
    signing_key: ec.EllipticCurvePrivateKey | None = None
    signed_start_in_stop: bool = True  # 1.6/2.0.1: repeat the signed start at the end (OCA 3.1.4)
    public_key_in_message: bool = True  # PublicKeyWithSignedMeterValue=EveryMeterValue
    tamper_signed_end: bool = False  # a faulty meter: one digit of the signed end changed

    def __post_init__(self) -> None:
        self.ws: ClientConnection | None = None
        self.heartbeat_interval = 60
        self.state = {
            n: ConnectorState(n, meter_wh=random.randint(100_000, 900_000))
            for n in range(1, self.connectors + 1)
        }
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task] = []
        self._stop = asyncio.Event()
        self.latencies: list[float] = []
        self.errors = 0
        self.received_calls: list[tuple[str, dict]] = []
        self.certificate_chain = ""
        self.call_lock = asyncio.Lock()
        self._session_lock = asyncio.Lock()
        self.profiles = Profiles()
        key = self.signing_key
        self.meters = (
            {n: SigningMeter(key, serial=f"SIM-{self.station_id}-{n}") for n in self.state}
            if key is not None
            else {}
        )
        self.signed: dict[int, dict[str, str]] = {}  # connector -> {"B": record, "E": record}
        self.signed_start_wh: dict[int, int] = {}
        self.configuration = self._configuration()

    def _configuration(self) -> dict[str, tuple[bool, str]]:
        """Its OCPP 1.6 configuration keys (key: (readonly, value)), as a real charger keeps them:
        the Core profile's required keys (OCPP 1.6 §9.1) and the smart-charging unit. Writable ones
        change by ChangeConfiguration and are read back by GetConfiguration."""
        units = ",".join(
            word
            for unit, word in (("A", "Current"), ("W", "Power"))
            if unit in self.rate_units.split(",")
        )
        readonly = {
            "GetConfigurationMaxKeys": "50",
            # What meter_values() sends, fixed (the central system checks it after boot).
            "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import,"
            "Current.Import",
            "NumberOfConnectors": str(self.connectors),
            "SupportedFeatureProfiles": "Core,RemoteTrigger,SmartCharging",
            "ChargingScheduleAllowedChargingRateUnit": units,
        }
        writable = {
            "AuthorizeRemoteTxRequests": "false",
            "ClockAlignedDataInterval": "0",
            "ConnectionTimeOut": "60",
            "HeartbeatInterval": "60",
            "LocalAuthorizeOffline": "true",
            "LocalPreAuthorize": "false",
            "MeterValuesAlignedData": "Energy.Active.Import.Register",
            "MeterValueSampleInterval": str(int(self.meter_interval)),
            "ResetRetries": "3",
            "ConnectorPhaseRotation": "NotApplicable",
            "StopTransactionOnEVSideDisconnect": "true",
            "StopTransactionOnInvalidId": "true",
            "StopTxnAlignedData": "",
            "StopTxnSampledData": "",
            "TransactionMessageAttempts": "3",
            "TransactionMessageRetryInterval": "60",
            "UnlockConnectorOnEVSideDisconnect": "true",
        }
        return {key: (True, value) for key, value in readonly.items()} | {
            key: (False, value) for key, value in writable.items()
        }

    # -- connection -----------------------------------------------------------------------------------

    def _headers(self) -> dict:
        if not self.password:
            return {}
        secret = self.password if isinstance(self.password, bytes) else self.password.encode()
        token = base64.b64encode(self.station_id.encode() + b":" + secret).decode()
        return {"Authorization": f"Basic {token}"}

    async def connect(self) -> None:
        self.ws = await websockets.connect(
            f"{self.url.rstrip('/')}/{self.station_id}",
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=self._headers(),
            open_timeout=30,
            ping_interval=None,
            max_size=2**20,
            ssl=self.ssl if self.url.startswith("wss") else None,
        )
        self._tasks.append(asyncio.create_task(self._reader()))

    def _connection(self) -> ClientConnection:
        """The open socket; ConnectionError (which run() retries on) when there is none: an
        answer still under way after a drop, or a call before connect()."""
        if self.ws is None:
            raise ConnectionError("not connected")
        return self.ws

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def _reader(self) -> None:
        try:
            async for raw in self._connection():
                message = json.loads(raw)
                kind = message[0]
                if kind == 2:
                    asyncio.create_task(self._answer(message[1], message[2], message[3]))
                elif kind in (3, 4):
                    future = self._pending.pop(message[1], None)
                    if future and not future.done():
                        future.set_result(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))

    async def call(self, action: str, payload: dict) -> dict:
        unique_id = f"{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        future = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        started = time.perf_counter()
        try:
            async with self.call_lock:  # one outstanding CALL per connection (OCPP-J §4.1.1)
                await self._connection().send(json.dumps([2, unique_id, action, payload]))
                message = await asyncio.wait_for(future, self.call_timeout)
        finally:
            # A call given up (cancelled while waiting for the lock, timed out) leaves no future
            # behind for the reader to fail when the socket closes ("never retrieved").
            self._pending.pop(unique_id, None)
            future.cancel()
        self.latencies.append(time.perf_counter() - started)
        if message[0] == 4:
            self.errors += 1
            raise CallError(message[2], message[3])
        return message[2]

    # -- what a charger says --------------------------------------------------------------------------

    async def boot(self) -> dict:
        result = await self.call(
            "BootNotification",
            {
                "chargePointVendor": "EVSim",
                "chargePointModel": "Sim-22",
                "chargePointSerialNumber": f"SN-{self.station_id}",
                "firmwareVersion": "1.4.2",
            },
        )
        self.heartbeat_interval = int(result.get("interval") or 60)
        for connector in self.state.values():
            await self.status(connector.connector_id, connector.status)
        return result

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> None:
        if connector_id in self.state:
            self.state[connector_id].status = status
        await self.call(
            "StatusNotification",
            {
                "connectorId": connector_id,
                "errorCode": error_code,
                "status": status,
                "timestamp": now_iso(),
            },
        )

    async def heartbeat(self) -> dict:
        return await self.call("Heartbeat", {})

    async def authorize(self, id_tag: str) -> str:
        return (await self.call("Authorize", {"idTag": id_tag}))["idTagInfo"]["status"]

    async def start(self, connector_id: int, id_tag: str) -> dict:
        connector = self.state[connector_id]
        await self.status(connector_id, "Preparing")
        self._sign_reading(connector_id, "B", id_tag)
        result = await self.call(
            "StartTransaction",
            {
                "connectorId": connector_id,
                "idTag": id_tag,
                "meterStart": connector.meter_wh,
                "timestamp": now_iso(),
            },
        )
        if result["idTagInfo"]["status"] == "Accepted":
            connector.transaction_id = result["transactionId"]
            connector.id_tag = id_tag
            connector.power_kw = self.power_kw
            connector.started_at = datetime.now(UTC)
            await self._send_signed_start(connector_id)
            await self.status(connector_id, "Charging")
        else:
            await self.call(
                "StopTransaction",
                {
                    "transactionId": result["transactionId"],
                    "meterStop": connector.meter_wh,
                    "timestamp": now_iso(),
                    "reason": "DeAuthorized",
                },
            )
            await self.status(connector_id, "Available")
        return result

    # -- what the car draws (issue 38) --------------------------------------------------------------

    def transaction_key(self, connector_id: int) -> str | None:
        """The running transaction's id as a profile names it (None: no transaction)."""
        tx = self.state[connector_id].transaction_id
        return None if tx is None else str(tx)

    def limit_a(self, connector_id: int, now: datetime | None = None) -> float | None:
        """The limit in force on the connector, in amperes per phase (None: no profile limits it)."""
        return self.profiles.limit_a(
            connector_id,
            now or datetime.now(UTC),
            transaction_id=self.transaction_key(connector_id),
            tx_start=self.state[connector_id].started_at,
            volts=self.voltage,
            phases=self.phases,
        )

    def ev_max_current(self, connector: ConnectorState) -> float:
        return (
            connector.ev_max_a
            or self.ev_max_a
            or connector.power_kw * 1000 / (self.voltage * self.phases)
        )

    def draw_a(self, connector_id: int) -> float:
        """The current the car draws now, per phase: min(its maximum, the limit in force)."""
        connector = self.state[connector_id]
        if connector.transaction_id is None:
            return 0.0
        limit = self.limit_a(connector_id)
        wanted = self.ev_max_current(connector)
        return wanted if limit is None else max(0.0, min(wanted, limit))

    def drawn_kw(self, connector: ConnectorState) -> float:
        if connector.transaction_id is None or (
            connector.ev_max_a is None and self.ev_max_a is None and not self.profiles.held
        ):
            return connector.power_kw  # no car model and no profile: the configured power
        return self.draw_a(connector.connector_id) * self.voltage * self.phases / 1000

    def _currents(self, connector: ConnectorState, power_kw: float) -> list[dict]:
        """Current.Import sampled values, one per phase the car draws on (L1..L3): a central
        system learns from them how many phases that is (1.6 has no numberOfPhasesUsed)."""
        if self.phases == 1:
            return [
                {
                    "value": f"{power_kw * 1000 / self.voltage:.1f}",
                    "measurand": "Current.Import",
                    "unit": "A",
                    "context": "Sample.Periodic",
                    "phase": "L1",
                }
            ]
        amps = power_kw * 1000 / (self.voltage * self.phases)
        return [
            {
                "value": f"{amps:.1f}",
                "measurand": "Current.Import",
                "unit": "A",
                "context": "Sample.Periodic",
                "phase": f"L{n}",
            }
            for n in range(1, self.phases + 1)
        ]

    async def meter_values(self, connector_id: int, seconds: float | None = None) -> None:
        connector = self.state[connector_id]
        seconds = self.meter_interval if seconds is None else seconds
        power_kw = self.drawn_kw(connector)
        connector.meter_wh += int(power_kw * 1000 * seconds / 3600)
        payload = {
            "connectorId": connector_id,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {
                            "value": str(connector.meter_wh),
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                            "context": "Sample.Periodic",
                        },
                        {
                            "value": f"{power_kw * 1000:.0f}",
                            "measurand": "Power.Active.Import",
                            "unit": "W",
                            "context": "Sample.Periodic",
                        },
                        *self._currents(connector, power_kw),
                    ],
                }
            ],
        }
        if connector.transaction_id is not None:
            payload["transactionId"] = connector.transaction_id
        await self.call("MeterValues", payload)

    async def stop(self, connector_id: int, reason: str = "Local") -> None:
        connector = self.state[connector_id]
        if connector.transaction_id is None:
            return
        tx, connector.transaction_id, connector.power_kw = connector.transaction_id, None, 0.0
        connector.started_at = None
        self.profiles.end_transaction(connector_id)
        await self.status(connector_id, "Finishing")
        payload = {
            "transactionId": tx,
            "meterStop": connector.meter_wh,
            "timestamp": now_iso(),
            "reason": reason,
            "idTag": connector.id_tag,
        }
        if self.signing_key is not None:
            payload["transactionData"] = self._signed_stop_data(connector_id)
        await self.call("StopTransaction", payload)
        await self.status(connector_id, "Available")

    # -- a signing meter (OCMF) --------------------------------------------------------------------

    def _sign_reading(self, connector_id: int, tx: str, id_tag: str = "") -> str | None:
        """Have the connector's meter sign its reading now ("B" begin, "E" end); keep it."""
        meter = self.meters.get(connector_id)
        if meter is None:
            return None
        connector = self.state[connector_id]
        if tx == "B":
            self.signed[connector_id] = {}
            self.signed_start_wh[connector_id] = connector.meter_wh
        record = meter.sign(
            wh=connector.meter_wh,
            tx=tx,
            when=datetime.now(UTC),
            id_tag=id_tag or connector.id_tag,
            charge_point=f"{self.station_id} {connector_id}",
        )
        if tx == "E" and self.tamper_signed_end:
            record = change_one_digit(record)
        self.signed.setdefault(connector_id, {})[tx] = record
        return record

    def _signed_value(self, record: str) -> dict:
        key = ""
        if self.public_key_in_message:
            assert self.signing_key is not None, "only a signing meter makes records"
            key = oca_public_key(self.signing_key)
        return smv(record, public_key=key)

    def _signed_sampled_16(self, record: str, context: str) -> dict:
        """A 1.6 sampledValue carrying a signed reading (OCA 3.2.1: the SignedMeterValueType
        as JSON text in `value`, format SignedData)."""
        return {
            "value": json.dumps(self._signed_value(record)),
            "format": "SignedData",
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        }

    async def _send_signed_start(self, connector_id: int) -> None:
        """OCA 3.1.2: the signed start in a MeterValues right after StartTransaction."""
        record = self.signed.get(connector_id, {}).get("B")
        connector = self.state[connector_id]
        if record is None or connector.transaction_id is None:
            return
        await self.call(
            "MeterValues",
            {
                "connectorId": connector_id,
                "transactionId": connector.transaction_id,
                "meterValue": [
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [self._signed_sampled_16(record, "Transaction.Begin")],
                    }
                ],
            },
        )

    def _signed_stop_data(self, connector_id: int) -> list[dict]:
        """OCA 3.1.4: StopTransaction.transactionData with the signed end (and the start)."""
        end = self._sign_reading(connector_id, "E")
        begin = self.signed.get(connector_id, {}).get("B")
        sampled = []
        if begin is not None and self.signed_start_in_stop:
            sampled.append(self._signed_sampled_16(begin, "Transaction.Begin"))
        if end is not None:
            sampled.append(self._signed_sampled_16(end, "Transaction.End"))
        return [{"timestamp": now_iso(), "sampledValue": sampled}]

    # -- what a charger answers -----------------------------------------------------------------------

    def _answers(self) -> dict[str, Callable[[dict], Answer]]:
        accepted = self._accepted
        return {
            "RemoteStartTransaction": self._on_remote_start,
            "RemoteStopTransaction": self._on_remote_stop,
            "Reset": accepted,
            "UnlockConnector": lambda p: (
                {"status": "Unlocked" if p["connectorId"] in self.state else "NotSupported"},
                None,
            ),
            "ChangeConfiguration": self._on_change_configuration,
            "ClearCache": accepted,
            "ChangeAvailability": accepted,
            "SendLocalList": accepted,
            "CertificateSigned": self._on_certificate_signed,
            "InstallCertificate": accepted,
            "GetInstalledCertificateIds": lambda p: ({"status": "NotFound"}, None),
            "DeleteCertificate": lambda p: ({"status": "NotFound"}, None),
            "GetLog": self._on_get_log,
            "SignedUpdateFirmware": self._on_signed_update_firmware,
            "ExtendedTriggerMessage": self._on_trigger,
            "GetLocalListVersion": lambda p: ({"listVersion": 0}, None),
            "GetConfiguration": self._on_get_configuration,
            "TriggerMessage": self._on_trigger,
            "DataTransfer": lambda p: ({"status": "UnknownVendorId"}, None),
            "SetChargingProfile": self._on_set_charging_profile,
            "ClearChargingProfile": self._on_clear_charging_profile,
            "GetCompositeSchedule": self._on_get_composite_schedule,
        }

    def _check_request(self, action: str, payload: dict) -> None:
        """Raise CallError unless the CALL's payload is schema-valid (the smart charging ones)."""
        try:
            protocol.check_outgoing(action, payload)
        except OcppError as exc:
            raise CallError(exc.code, exc.description) from None

    async def _answer(self, unique_id: str, action: str, payload: dict) -> None:
        self.received_calls.append((action, payload))
        handler = self._answers().get(action)
        try:
            response, follow_up = handler(payload) if handler else (None, None)
        except CallError as exc:
            await self._connection().send(json.dumps([4, unique_id, exc.code, exc.description, {}]))
            return
        await self._reply(unique_id, action, response, follow_up)

    @staticmethod
    def _accepted(payload: dict) -> Answer:
        return {"status": "Accepted"}, None

    def _on_remote_start(self, payload: dict) -> Answer:
        connector_id = payload.get("connectorId") or 1
        free = connector_id in self.state and self.state[connector_id].transaction_id is None
        ok = self.remote_start_accept and free
        follow_up = self.start(connector_id, payload["idTag"]) if ok else None
        return {"status": "Accepted" if ok else "Rejected"}, follow_up

    def _on_remote_stop(self, payload: dict) -> Answer:
        match = [c for c in self.state.values() if c.transaction_id == payload["transactionId"]]
        follow_up = self.stop(match[0].connector_id, "Remote") if match else None
        return {"status": "Accepted" if match else "Rejected"}, follow_up

    def _on_change_configuration(self, payload: dict) -> Answer:
        key = payload.get("key", "")
        if key.lower() == "authorizationkey":
            # Whitepaper A01: accept, then reconnect with the new key (sent as raw bytes).
            return {"status": "Accepted"}, self._adopt_key(payload["value"])
        if key not in self.configuration:
            return {"status": "NotSupported"}, None
        readonly, _ = self.configuration[key]
        if readonly:
            return {"status": "Rejected"}, None
        self.configuration[key] = (False, str(payload.get("value", "")))
        if key == "HeartbeatInterval" and self.configuration[key][1].isdigit():
            self.heartbeat_interval = int(self.configuration[key][1])
        return {"status": "Accepted"}, None

    def _on_certificate_signed(self, payload: dict) -> Answer:
        self.certificate_chain = payload["certificateChain"]
        return {"status": "Accepted"}, None

    def _on_get_log(self, payload: dict) -> Answer:
        response = {"status": "Accepted", "filename": f"{self.station_id}-{payload['logType']}.log"}
        return response, self._notify(
            "LogStatusNotification", payload["requestId"], ["Uploading", "Uploaded"]
        )

    def _on_signed_update_firmware(self, payload: dict) -> Answer:
        return {"status": "Accepted"}, self._notify(
            "SignedFirmwareStatusNotification",
            payload["requestId"],
            ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"],
        )

    def _on_trigger(self, payload: dict) -> Answer:
        follow_up = self.heartbeat() if payload.get("requestedMessage") == "Heartbeat" else None
        return {"status": "Accepted"}, follow_up

    def _on_get_configuration(self, payload: dict) -> Answer:
        known = dict(self.configuration, HeartbeatInterval=(False, str(self.heartbeat_interval)))
        asked = payload.get("key") or list(known)
        response: dict = {
            "configurationKey": [
                {"key": key, "readonly": known[key][0], "value": known[key][1]}
                for key in asked
                if key in known
            ]
        }
        unknown = [key for key in asked if key not in known]
        if unknown:
            response["unknownKey"] = unknown
        return response, None

    # -- smart charging (OCPP 1.6 §3.13, §5.5, §5.7, §5.16; 2.0.1 K01-K10) -------------------------

    def _transactions(self) -> dict[int, str]:
        return {n: key for n in self.state if (key := self.transaction_key(n)) is not None}

    def _install(self, profile: Held) -> Answer:
        status = (
            self.profiles.check(
                profile, connector_ids=set(self.state), transactions=self._transactions()
            )
            if self.profile_accept and profile.unit in self.rate_units.split(",")
            else "Rejected"
        )
        if status == "Accepted":
            self.profiles.install(profile)
        return {"status": status}, None

    def _on_set_charging_profile(self, payload: dict) -> Answer:
        self._check_request("SetChargingProfile", payload)
        return self._install(Held.from_v16(payload))

    def _on_clear_charging_profile(self, payload: dict) -> Answer:
        self._check_request("ClearChargingProfile", payload)
        cleared = self.profiles.clear(
            profile_id=payload.get("id"),
            connector_id=payload.get("connectorId"),
            purpose=payload.get("chargingProfilePurpose"),
            stack_level=payload.get("stackLevel"),
        )
        return {"status": "Accepted" if cleared else "Unknown"}, None

    def _composite(self, connector_id: int, duration: int) -> dict:
        """The schedule in force on the connector now, as one period (A)."""
        limit = self.limit_a(connector_id) if connector_id in self.state else None
        if limit is None:
            limit = self.ev_max_current(self.state.get(connector_id) or ConnectorState(0))
        return {
            "duration": duration,
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(limit, 1)}],
        }

    def _on_get_composite_schedule(self, payload: dict) -> Answer:
        self._check_request("GetCompositeSchedule", payload)
        connector_id = payload["connectorId"]
        if connector_id and connector_id not in self.state:
            return {"status": "Rejected"}, None
        schedule = self._composite(connector_id, payload["duration"])
        return {
            "status": "Accepted",
            "connectorId": connector_id,
            "scheduleStart": now_iso(),
            "chargingSchedule": {**schedule, "startSchedule": now_iso()},
        }, None

    async def _reply(
        self,
        unique_id: str,
        action: str,
        response: dict | None,
        follow_up: Awaitable[Any] | None,
    ) -> None:
        """Answer a CALL (NotSupported when there is no response), then run what it asked for."""
        if response is None:
            frame = [
                4,
                unique_id,
                "NotSupported",
                f"{action} is not supported by the simulator",
                {},
            ]
        else:
            frame = [3, unique_id, response]
        await self._connection().send(json.dumps(frame))
        if follow_up is not None:
            try:
                await follow_up
            except Exception:  # noqa: BLE001 - a simulator keeps going
                logger.warning("%s: follow-up of %s failed", self.station_id, action, exc_info=True)

    async def _adopt_key(self, value: str) -> None:
        await asyncio.sleep(0.1)  # let the answer go out first
        self.password = bytes.fromhex(value)
        if self.ws is not None:
            await self.ws.close()  # run() reconnects with the new key

    async def _notify(self, action: str, request_id: int, statuses: list[str]) -> None:
        for status in statuses:
            await asyncio.sleep(0.2)
            await self.call(action, {"status": status, "requestId": request_id})

    async def security_event(self, event_type: str, tech_info: str = "") -> None:
        payload = {"type": event_type, "timestamp": now_iso()}
        if tech_info:
            payload["techInfo"] = tech_info
        await self.call("SecurityEventNotification", payload)

    # -- behaviour over time ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Boot, then heartbeat and run charging sessions until closed (reconnects on drops)."""
        while not self._stop.is_set():
            try:
                if self.ws is None or self.ws.state.name != "OPEN":
                    await self.connect()
                    await self.boot()
                loops = [asyncio.create_task(self._heartbeats())]
                if self.auto_sessions:
                    loops += [asyncio.create_task(self._sessions(n)) for n in self.state]
                done, pending = await asyncio.wait(
                    [*loops, asyncio.create_task(self._connection().wait_closed())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in pending:
                    task.cancel()
            except (OSError, websockets.WebSocketException, ConnectionError, TimeoutError) as exc:
                logger.info("%s: connection problem (%s); retrying", self.station_id, exc)
            if not self._stop.is_set():
                self.ws = None
                await asyncio.sleep(random.uniform(1, 5))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self.heartbeat()

    def may_simulate_on(self, connector_id: int) -> bool:
        """A simulated session may start here only if `keep_free` other ports stay free."""
        connector = self.state[connector_id]
        if connector.transaction_id is not None or connector.status != "Available":
            return False
        free = sum(
            1
            for c in self.state.values()
            if c.connector_id != connector_id
            and c.transaction_id is None
            and c.status == "Available"
        )
        return free >= self.keep_free

    async def _sessions(self, connector_id: int) -> None:
        while True:
            await asyncio.sleep(random.uniform(*self.idle_seconds))
            # One port at a time decides and starts, so two ports never both take the last slot.
            async with self._session_lock:
                if self.may_simulate_on(connector_id):
                    id_tag = random.choice(self.id_tags)
                    if await self.authorize(id_tag) == "Accepted":
                        await self.start(connector_id, id_tag)
            deadline = time.monotonic() + random.uniform(*self.session_seconds)
            while (
                self.state[connector_id].transaction_id is not None and time.monotonic() < deadline
            ):
                await asyncio.sleep(self.meter_interval)
                if self.state[connector_id].transaction_id is not None:
                    await self.meter_values(connector_id)
            await self.stop(connector_id)


class SimulatedCharger201(SimulatedCharger):
    """The same charger speaking OCPP 2.0.1 (subprotocol ocpp2.0.1): BootNotification with
    chargingStation, StatusNotification per EVSE/connector, Authorize with idToken, and
    transactions as TransactionEvent Started/Updated/Ended with a seqNo (part 2, E01-E06).
    Each simulated connector is one EVSE with one connector."""

    PROTOCOL = "ocpp2.0.1"
    ID_TOKEN_TYPE = "ISO14443"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tx_ids: dict[int, str] = {}  # evse id -> the transactionId we named
        self.seq_no = itertools.count(
            0
        )  # one counter per station (E: seqNo increments per transaction)

    async def connect(self) -> None:
        self.ws = await websockets.connect(
            f"{self.url.rstrip('/')}/{self.station_id}",
            subprotocols=[Subprotocol(self.PROTOCOL)],
            additional_headers=self._headers(),
            open_timeout=30,
            ping_interval=None,
            max_size=2**20,
            ssl=self.ssl if self.url.startswith("wss") else None,
        )
        self._tasks.append(asyncio.create_task(self._reader()))

    async def boot(self) -> dict:
        result = await self.call(
            "BootNotification",
            {
                "reason": "PowerUp",
                "chargingStation": {
                    "vendorName": "EVSim",
                    "model": "Sim-201",
                    "serialNumber": f"SN-{self.station_id}",
                    "firmwareVersion": "2.0.1-sim",
                },
            },
        )
        self.heartbeat_interval = int(result.get("interval") or 60)
        for connector in self.state.values():
            await self.status(connector.connector_id, "Available")
        return result

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> None:
        # 2.0.1 ConnectorStatusEnumType has no Preparing/Charging/Finishing: those are Occupied.
        connector_status = {
            "Preparing": "Occupied",
            "Charging": "Occupied",
            "Finishing": "Occupied",
            "SuspendedEV": "Occupied",
            "SuspendedEVSE": "Occupied",
        }.get(status, status)
        if connector_id in self.state:
            self.state[connector_id].status = status
        await self.call(
            "StatusNotification",
            {
                "timestamp": now_iso(),
                "connectorStatus": connector_status,
                "evseId": connector_id,
                "connectorId": 1,
            },
        )

    async def authorize(self, id_tag: str) -> str:
        answer = await self.call(
            "Authorize", {"idToken": {"idToken": id_tag, "type": self.ID_TOKEN_TYPE}}
        )
        return answer["idTokenInfo"]["status"]

    def _meter(self, connector: ConnectorState, context: str) -> list[dict]:
        return [
            {
                "timestamp": now_iso(),
                "sampledValue": [
                    {
                        "value": connector.meter_wh,
                        "measurand": "Energy.Active.Import.Register",
                        "context": context,
                        "unitOfMeasure": {"unit": "Wh"},
                    },
                    {
                        "value": round(self.drawn_kw(connector) * 1000),
                        "measurand": "Power.Active.Import",
                        "context": context,
                        "unitOfMeasure": {"unit": "W"},
                    },
                ],
            }
        ]

    async def _event(
        self, connector_id: int, event_type: str, trigger: str, context: str, **info: object
    ) -> dict:
        connector = self.state[connector_id]
        payload: dict = {
            "eventType": event_type,
            "timestamp": now_iso(),
            "triggerReason": trigger,
            "seqNo": next(self.seq_no),
            "transactionInfo": {"transactionId": self.tx_ids[connector_id], **info},
            "evse": {"id": connector_id, "connectorId": 1},
            "meterValue": self._meter(connector, context),
        }
        if event_type == "Started" or trigger == "StopAuthorized":
            payload["idToken"] = {"idToken": connector.id_tag, "type": self.ID_TOKEN_TYPE}
        if self.signing_key is not None and event_type in ("Started", "Ended"):
            self._sign_201(connector_id, event_type, payload["meterValue"])
        return await self.call("TransactionEvent", payload)

    def _sign_201(self, connector_id: int, event_type: str, meter_value: list[dict]) -> None:
        """2.0.1 signedMeterValue on the energy reading of Started (Transaction.Begin) and Ended
        (Transaction.End, with the start again as its own Transaction.Begin value, OCA 4.1.2)."""
        record = self._sign_reading(connector_id, "B" if event_type == "Started" else "E")
        if record is None:
            return
        meter_value[0]["sampledValue"][0]["signedMeterValue"] = self._signed_value(record)
        begin = self.signed.get(connector_id, {}).get("B")
        if event_type == "Ended" and begin is not None and self.signed_start_in_stop:
            begin_wh = self.signed_start_wh[connector_id]
            meter_value.append(
                {
                    "timestamp": meter_value[0]["timestamp"],
                    "sampledValue": [
                        {
                            "value": begin_wh,
                            "measurand": "Energy.Active.Import.Register",
                            "context": "Transaction.Begin",
                            "unitOfMeasure": {"unit": "Wh"},
                            "signedMeterValue": self._signed_value(begin),
                        }
                    ],
                }
            )

    async def start(
        self, connector_id: int, id_tag: str, remote_start_id: int | None = None
    ) -> dict:
        connector = self.state[connector_id]
        await self.status(connector_id, "Occupied")
        self.tx_ids[connector_id] = uuid.uuid4().hex[:36]
        connector.id_tag, connector.transaction_id = id_tag, 1
        info: dict = {"chargingState": "Charging"}
        trigger = "Authorized"
        if remote_start_id is not None:
            info["remoteStartId"], trigger = remote_start_id, "RemoteStart"
        result = await self._event(connector_id, "Started", trigger, "Transaction.Begin", **info)
        if result.get("idTokenInfo", {}).get("status", "Accepted") == "Accepted":
            connector.power_kw = self.power_kw
            connector.started_at = datetime.now(UTC)
        else:  # E05: not authorized: end it at once
            await self.stop(connector_id, "DeAuthorized")
        return result

    async def meter_values(self, connector_id: int, seconds: float | None = None) -> None:
        connector = self.state[connector_id]
        seconds = self.meter_interval if seconds is None else seconds
        connector.meter_wh += int(self.drawn_kw(connector) * 1000 * seconds / 3600)
        if connector.transaction_id is None:
            await self.call(
                "MeterValues",
                {"evseId": connector_id, "meterValue": self._meter(connector, "Sample.Periodic")},
            )
            return
        await self._event(
            connector_id,
            "Updated",
            "MeterValuePeriodic",
            "Sample.Periodic",
            chargingState="Charging",
        )

    async def stop(self, connector_id: int, reason: str = "Local") -> None:
        connector = self.state[connector_id]
        if connector.transaction_id is None:
            return
        connector.power_kw = 0.0
        connector.started_at = None
        self.profiles.end_transaction(connector_id)
        trigger = {"Remote": "RemoteStop", "DeAuthorized": "Deauthorized"}.get(
            reason, "StopAuthorized"
        )
        info: dict = {"chargingState": "Idle"}
        if reason != "Local":  # E06: left out when Local
            info["stoppedReason"] = reason
        await self._event(connector_id, "Ended", trigger, "Transaction.End", **info)
        connector.transaction_id = None
        self.tx_ids.pop(connector_id, None)
        await self.status(connector_id, "Available")

    def _answers(self) -> dict[str, Callable[[dict], Answer]]:
        accepted = self._accepted
        return {
            "RequestStartTransaction": self._on_request_start,
            "RequestStopTransaction": self._on_request_stop,
            "Reset": accepted,
            "UnlockConnector": lambda p: (
                {"status": "Unlocked" if p["evseId"] in self.state else "UnknownConnector"},
                None,
            ),
            "ClearCache": accepted,
            "ChangeAvailability": accepted,
            "SendLocalList": accepted,
            "CertificateSigned": accepted,
            "GetBaseReport": lambda p: ({"status": "Accepted"}, self._report(p["requestId"])),
            "GetVariables": self._on_get_variables,
            "SetVariables": self._on_set_variables,
            "TriggerMessage": self._on_trigger,
            "DataTransfer": lambda p: ({"status": "UnknownVendorId"}, None),
            "SetChargingProfile": self._on_set_charging_profile,
            "ClearChargingProfile": self._on_clear_charging_profile,
            "GetCompositeSchedule": self._on_get_composite_schedule,
            "GetTransactionStatus": self._on_get_transaction_status,
        }

    def _on_get_transaction_status(self, payload: dict) -> Answer:
        """E14: whether it runs the transaction; its events are sent as they happen, so none is
        ever queued (a charger restarted by the demo's restart forgot the ones it ran)."""
        answer: dict[str, Any] = {"messagesInQueue": False}
        if "transactionId" in payload:
            answer["ongoingIndicator"] = payload["transactionId"] in self.tx_ids.values()
        return answer, None

    def _check_request(self, action: str, payload: dict) -> None:
        try:
            protocol201.check_outgoing(action, payload)
        except OcppError as exc:
            raise CallError(exc.code, exc.description) from None

    def transaction_key(self, connector_id: int) -> str | None:
        return self.tx_ids.get(connector_id)

    def _on_request_start(self, payload: dict) -> Answer:
        evse_id = payload.get("evseId") or 1
        ok = (
            self.remote_start_accept
            and evse_id in self.state
            and self.state[evse_id].transaction_id is None
        )
        follow_up = (
            self.start(evse_id, payload["idToken"]["idToken"], payload["remoteStartId"])
            if ok
            else None
        )
        return {"status": "Accepted" if ok else "Rejected"}, follow_up

    def _on_request_stop(self, payload: dict) -> Answer:
        match = [n for n, tx in self.tx_ids.items() if tx == payload["transactionId"]]
        follow_up = self.stop(match[0], "Remote") if match else None
        return {"status": "Accepted" if match else "Rejected"}, follow_up

    def _on_get_variables(self, payload: dict) -> Answer:
        return {
            "getVariableResult": [
                {
                    **item,
                    "attributeStatus": "Accepted",
                    "attributeValue": str(self.heartbeat_interval),
                }
                if item.get("variable", {}).get("name") == "HeartbeatInterval"
                else {**item, "attributeStatus": "UnknownVariable"}
                for item in payload["getVariableData"]
            ]
        }, None

    def _on_set_variables(self, payload: dict) -> Answer:
        return {
            "setVariableResult": [
                {
                    "component": item["component"],
                    "variable": item["variable"],
                    "attributeStatus": "Accepted",
                }
                for item in payload["setVariableData"]
            ]
        }, None

    def _on_set_charging_profile(self, payload: dict) -> Answer:
        self._check_request("SetChargingProfile", payload)
        return self._install(Held.from_v201(payload))

    def _on_clear_charging_profile(self, payload: dict) -> Answer:
        self._check_request("ClearChargingProfile", payload)
        criteria = payload.get("chargingProfileCriteria") or {}
        cleared = self.profiles.clear(
            profile_id=payload.get("chargingProfileId"),
            connector_id=criteria.get("evseId"),
            purpose=criteria.get("chargingProfilePurpose"),
            stack_level=criteria.get("stackLevel"),
        )
        return {"status": "Accepted" if cleared else "Unknown"}, None

    def _on_get_composite_schedule(self, payload: dict) -> Answer:
        self._check_request("GetCompositeSchedule", payload)
        evse_id = payload["evseId"]
        if evse_id and evse_id not in self.state:
            return {"status": "Rejected"}, None
        schedule = self._composite(evse_id, payload["duration"])
        return {
            "status": "Accepted",
            "schedule": {"evseId": evse_id, "scheduleStart": now_iso(), **schedule},
        }, None

    async def _report(self, request_id: int) -> None:
        await asyncio.sleep(0.1)
        data = [
            {
                "component": {"name": "OCPPCommCtrl"},
                "variable": {"name": "HeartbeatInterval"},
                "variableAttribute": [
                    {
                        "type": "Actual",
                        "value": str(self.heartbeat_interval),
                        "mutability": "ReadWrite",
                    }
                ],
                "variableCharacteristics": {
                    "dataType": "integer",
                    "unit": "s",
                    "supportsMonitoring": False,
                },
            },
            {
                "component": {"name": "ChargingStation"},
                "variable": {"name": "Model"},
                "variableAttribute": [
                    {"type": "Actual", "value": "Sim-201", "mutability": "ReadOnly"}
                ],
                "variableCharacteristics": {"dataType": "string", "supportsMonitoring": False},
            },
        ]
        for n in self.state:
            data.append(
                {
                    "component": {"name": "EVSE", "evse": {"id": n}},
                    "variable": {"name": "Power"},
                    "variableAttribute": [
                        {"type": "MaxSet", "value": str(int(self.power_kw * 1000))}
                    ],
                    "variableCharacteristics": {
                        "dataType": "decimal",
                        "unit": "W",
                        "supportsMonitoring": False,
                    },
                }
            )
        await self.call(
            "NotifyReport",
            {"requestId": request_id, "generatedAt": now_iso(), "seqNo": 0, "reportData": data},
        )


def make_simulator(protocol: str = "1.6", **kwargs: Any) -> SimulatedCharger:
    """Return a simulated charger speaking `protocol` ("1.6" or "2.0.1"); `kwargs` are the
    dataclass fields, checked by its constructor (their types differ field by field)."""
    cls = SimulatedCharger201 if protocol == "2.0.1" else SimulatedCharger
    return cls(**kwargs)
