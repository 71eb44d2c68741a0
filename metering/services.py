"""Writes of signed metering: register meter keys; read a session's signed values from where
chargers kept them, verify each (metering.ocmf) and store the result (SignedReading).

Where the raw signed values are (chargers stores them whole before answering the charger, on
every path, so nothing here can lose one; a failure here leaves them for the next attempt):
- 1.6 MeterValues (the signed start, intermediate values): chargers.models.SignedSample;
- 1.6 StopTransaction transactionData: ChargingSession.transaction_data;
- 2.0.1 TransactionEvent meterValue: chargers.models.TransactionEvent.payload;
- 2.0.1 MeterValues: chargers.models.SignedSample, given the transaction of the session open on
  the EVSE at the value's time (a start or end there only when the TransactionEvents lack one).
`session_signed_ingest` is idempotent: a value already stored (same nature and text) is checked
again and updated, never duplicated.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from chargers.models import Charger, ChargingSession, SignedSample, TransactionEvent
from chargers.ocpp.storable import clean_text
from chargers.sessions.services import session_signed_energy_record
from chargers.sessions.signed import SignedValue, signed_values

from . import ocmf
from .models import MeterKey, SignedReading
from .selectors import key_for_reading, summarize

logger = logging.getLogger(__name__)

REASON_MAX = 200


# -- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterIdentity:
    """How a key names its meter: by serial (OCMF MS), or by the connector (1.6) or EVSE
    (2.0.1) it measures, for a meter whose OCMF names no serial. Exactly one is set."""

    meter_serial: str = ""
    connector_id: int | None = None
    evse_id: int | None = None

    def lookup(self) -> dict[str, Any]:
        if self.meter_serial:
            return {"meter_serial": self.meter_serial}
        if self.connector_id is not None:
            return {"meter_serial": "", "connector_id": self.connector_id}
        return {"meter_serial": "", "evse_id": self.evse_id}


def meter_identity_check(charger: Charger, identity: MeterIdentity) -> None:
    """Raise ValueError with a sentence for the host unless exactly one of serial, connector
    and EVSE names the meter, and the connector/EVSE fits the charger's OCPP version."""
    given = [
        bool(identity.meter_serial),
        identity.connector_id is not None,
        identity.evse_id is not None,
    ]
    if sum(given) != 1:
        raise ValueError(
            "Name the meter by exactly one of meter_serial (its OCMF serial), connector_id "
            "(OCPP 1.6) or evse_id (OCPP 2.0.1)."
        )
    v201 = charger.speaks_v2()
    if identity.connector_id is not None and v201:
        raise ValueError("This charger speaks OCPP 2.0.1: name the meter by its evse_id.")
    if identity.evse_id is not None and not v201:
        raise ValueError("This charger speaks OCPP 1.6: name the meter by its connector_id.")
    port = identity.connector_id if identity.connector_id is not None else identity.evse_id
    if port is not None and port < 1:
        raise ValueError("Connectors and EVSEs are numbered from 1.")


def _read_key(public_key: str, signing_method: str) -> tuple[bytes, str]:
    der = ocmf.load_public_key(public_key)
    curve_method = ocmf.signing_method_for(der)
    method = signing_method or curve_method
    if method not in ocmf.CURVES:
        raise ValueError(f"Signing method {method[:50]!r} is not one OCMF defines.")
    if method != curve_method:
        raise ValueError(f"The key is a {ocmf.key_curve(der)} key; {method} needs another curve.")
    return der, method


def meter_key_put(
    *,
    charger: Charger,
    meter_serial: str = "",
    public_key: str,
    signing_method: str = "",
    user: Any = None,
    connector_id: int | None = None,
    evse_id: int | None = None,
) -> MeterKey:
    """Register (or replace) the public key of a charger's meter, named by its serial or, for a
    meter whose OCMF names none, by its connector (1.6) or EVSE (2.0.1). A person registering a
    key has it from the meter: the key is confirmed. Raises ValueError with a sentence for the
    host when the key cannot be read, does not fit the signing method, or the meter is not
    named by exactly one of the three."""
    identity = MeterIdentity(meter_serial, connector_id, evse_id)
    meter_identity_check(charger, identity)
    der, method = _read_key(public_key, signing_method)
    with transaction.atomic():
        key, _ = MeterKey.objects.update_or_create(
            charger=charger,
            **identity.lookup(),
            defaults={
                "public_key": der,
                "signing_method": method,
                "registered_by": user,
                "source": MeterKey.Source.PERSON,
                "confirmed_at": timezone.now(),
                "confirmed_by": user,
            },
        )
    return key


def meter_key_prefill(*, charger: Charger, port: int, public_key: str) -> MeterKey | None:
    """Keep a key the charger reports for the meter of a connector (1.6) or EVSE (2.0.1) as
    unconfirmed: it verifies nothing until a person confirms it matches the key printed on the
    meter. A key a person registered or confirmed for that port is left as it is; an unconfirmed
    one is replaced. Returns None (and changes nothing) when the key cannot be read."""
    v201 = charger.speaks_v2()
    identity = MeterIdentity(connector_id=None if v201 else port, evse_id=port if v201 else None)
    try:
        meter_identity_check(charger, identity)
        der, method = _read_key(public_key, "")
    except ValueError as exc:
        logger.info("Charger %s reported a meter key that cannot be used: %s", charger.pk, exc)
        return None
    with transaction.atomic():
        existing = (
            MeterKey.objects.select_for_update()
            .filter(charger=charger, **identity.lookup())
            .first()
        )
        if existing is not None and existing.confirmed:
            return existing
        key, _ = MeterKey.objects.update_or_create(
            charger=charger,
            **identity.lookup(),
            defaults={
                "public_key": der,
                "signing_method": method,
                "registered_by": None,
                "source": MeterKey.Source.CHARGER,
                "confirmed_at": None,
                "confirmed_by": None,
            },
        )
    return key


class KeyChanged(ValueError):
    """The meter's key is no longer the one the person confirming it was shown."""


def meter_key_confirm(
    *, key: MeterKey, user: Any, printed_key: str = "", shown_key: bytes | None = None
) -> MeterKey:
    """A person confirms the key matches the one printed on the meter; from now on it verifies
    the meter's readings. `printed_key`, when given, must be that same key (ValueError if not).
    `shown_key` is the key the person was shown: a key the charger reported since (it replaces
    an unconfirmed one) is not confirmed by that press (ValueError). The charger's recent signed
    sessions are checked again."""
    expected = shown_key
    if printed_key:
        expected = ocmf.load_public_key(printed_key)
        if expected != bytes(key.public_key):
            raise ValueError(
                "The key printed on the meter is not the one the charger reported: register "
                "the printed key instead, and tell the charger's vendor."
            )
    same = MeterKey.objects.filter(pk=key.pk)
    if expected is not None:
        same = same.filter(public_key=expected)  # checked and confirmed in one statement
    if not same.update(confirmed_at=timezone.now(), confirmed_by=user, updated=timezone.now()):
        raise KeyChanged(
            "The charger reported another key for this meter since the page was loaded: "
            "compare the key shown now with the one printed on the meter, then confirm."
        )
    key.refresh_from_db()
    charger_signed_recheck(charger_id=key.charger_id)
    return key


def _ports(charger: Charger) -> list[int]:
    from chargers.models import Connector

    ports = list(
        Connector.objects.filter(charger=charger, connector_id__gt=0).values_list(
            "connector_id", flat=True
        )
    )
    return sorted(set(ports)) or [1]


def meter_keys_read_from_charger(*, charger: Charger, user_id: int | None = None) -> list[MeterKey]:
    """Ask the charger for its meters' public keys (1.6 GetConfiguration of
    `MeterPublicKey[ConnectorID]`, 2.0.1 GetVariables of FiscalMetering.PublicKey per EVSE) and
    keep each as an unconfirmed key (meter_key_prefill). Raises ValueError with a sentence for
    the host when the charger cannot be asked or does not answer."""
    from chargers.devices import commands
    from chargers.models import Command

    ports = _ports(charger)
    v201 = charger.speaks_v2()
    if v201:
        action = "GetVariables"
        payload: dict[str, Any] = {
            "getVariableData": [
                {
                    "component": {"name": "FiscalMetering", "evse": {"id": port}},
                    "variable": {"name": "PublicKey"},
                }
                for port in ports
            ]
        }
    else:
        action, payload = "GetConfiguration", {"key": ocmf.meter_public_key_names(ports)}
    try:
        command = commands.send_command_sync(
            charger, action, payload, source="api", user_id=user_id
        )
    except commands.ChargerOffline:
        raise ValueError("The charger is offline: ask again once it is connected.") from None
    except commands.CommandTimeout:
        raise ValueError("The charger did not answer in time: ask again later.") from None
    except commands.InvalidCommand as exc:
        raise ValueError(f"The charger cannot be asked: {exc}") from None
    if command.status != Command.Status.ANSWERED:
        raise ValueError(f"The charger refused {action} ({command.error or 'no details'}).")
    response = command.response if isinstance(command.response, dict) else {}
    if v201:
        reported = ocmf.configured_meter_keys_201(response.get("getVariableResult") or [])
    else:
        reported = ocmf.configured_meter_keys_16(response.get("configurationKey") or [])
    keys = []
    for port, text in sorted(reported.items()):
        key = meter_key_prefill(charger=charger, port=port, public_key=text)
        if key is not None:
            keys.append(key)
    return keys


def meter_key_delete(key: MeterKey) -> None:
    key.delete()


# -- ingest ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A signed value of a session, as chargers kept it, with where it came from."""

    value: SignedValue
    message_time: Any = None  # the message's timestamp (datetime) when the value has none
    # From a 2.0.1 MeterValues (no transaction named): a start or end only if the session's
    # TransactionEvents carry none, else an intermediate reading.
    extra: bool = False


def _samples(session: ChargingSession, *, extra: bool) -> list[Found]:
    samples = SignedSample.objects.filter(
        charger_id=session.charger_id, transaction_id=session.transaction_id
    ).order_by("timestamp", "id")
    return [
        Found(
            SignedValue(
                timestamp=sample.timestamp.isoformat(),
                context=sample.context,
                measurand=sample.measurand,
                value=sample.value,
            ),
            extra=extra,
        )
        for sample in samples
    ]


def _found(session: ChargingSession) -> list[Found]:
    if not session.ocpp_transaction_id:
        found = _samples(session, extra=False)
        found.extend(Found(value) for value in signed_values(session.transaction_data))
        return found
    found = []
    # Only the events that carry a signed value leave the database (a long session has many).
    events = TransactionEvent.objects.filter(
        session_id=session.pk, payload__meterValue__icontains="signedMeterValue"
    ).only("payload")
    ended = (
        TransactionEvent.objects.filter(session_id=session.pk, event_type="Ended")
        .exclude(seq_no=None)
        .values_list("seq_no", flat=True)
        .first()
    )
    if ended is not None:
        # Events numbered after the Ended never change a closed session (chargers fold).
        events = events.exclude(seq_no__gt=ended)
    for event in events.order_by("seq_no", "id"):
        payload = event.payload if isinstance(event.payload, dict) else {}
        found.extend(Found(value) for value in signed_values(payload.get("meterValue")))
    return found + _samples(session, extra=True)


def _nature(context: str, value_type: str, single: bool, taken: frozenset = frozenset()) -> str:
    nature = _typed_nature(context, value_type, single)
    return SignedReading.Nature.INTERMEDIATE if nature in taken else nature


def _typed_nature(context: str, value_type: str, single: bool) -> str:
    if value_type == "B":
        return SignedReading.Nature.START
    if value_type == "E":
        return SignedReading.Nature.END
    if single and context == "Transaction.Begin":
        return SignedReading.Nature.START
    if single and context == "Transaction.End":
        return SignedReading.Nature.END
    return SignedReading.Nature.INTERMEDIATE


def _sent_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _digest(nature: str, text: str, index: int) -> str:
    return hashlib.sha256(f"{nature}|{index}|{text}".encode()).hexdigest()


def _key_for(
    keys: list[MeterKey], reading: ocmf.OcmfReading, sent_key: str, port: int | None = None
) -> tuple[bytes | None, str]:
    """The registered, confirmed key that must have signed `reading`, or None and why. A
    reading that names its meter (OCMF MS) takes the key of that serial; one that names none
    takes the key registered for the session's connector (1.6) or EVSE (2.0.1)."""
    key = key_for_reading(keys, meter_serial=reading.meter_serial, port=port)
    serial = reading.meter_serial[:40] or "(none)"
    if key is None:
        named = f"meter {serial}" if reading.meter_serial else f"the meter of connector {port}"
        if sent_key:
            return None, (
                f"the charger sent a public key, but none is registered for {named}: "
                "register the key printed on the meter"
            )
        return None, f"no public key is registered for {named}"
    if not key.confirmed:
        return None, (
            f"the key read from the charger for {key.identity} is not confirmed: compare it with "
            "the key printed on the meter and confirm it"
        )
    if sent_key:
        try:
            sent = ocmf.load_public_key(sent_key)
        except ValueError:
            return None, "the public key the charger sent cannot be read"
        if sent != bytes(key.public_key):
            return None, f"the public key the charger sent is not the one registered for {serial}"
    return bytes(key.public_key), ""


@dataclass
class Checked:
    nature: str
    digest: str
    fields: dict[str, Any]


def _check(
    found: Found,
    keys: list[MeterKey],
    facts: ocmf.SessionFacts,
    taken: frozenset = frozenset(),
    port: int | None = None,
) -> tuple[list[Checked], ocmf.OcmfReading | None]:
    """Verify one signed value: one row per reading it holds (a container may hold B and E).
    A start or end whose nature is `taken` (the session has one already) is intermediate."""
    sent = clean_text(_sent_text(found.value.value))
    context = found.value.context
    try:
        wrapped = ocmf.unwrap(found.value.value)
        reading = ocmf.parse(wrapped.ocmf)
    except ocmf.Malformed as exc:
        nature = _nature(context, "", True, taken)
        return [
            Checked(
                nature,
                _digest(nature, sent, 0),
                {
                    "raw": sent,
                    "sent": sent,
                    "status": ocmf.Status.MALFORMED,
                    "reason": _stored(str(exc), REASON_MAX),
                },
            )
        ], None
    key, why = _key_for(keys, reading, wrapped.public_key, port)
    if key is None:
        result = ocmf.VerificationResult(ocmf.Status.UNKNOWN_KEY, why)
    else:
        result = ocmf.verify(reading, key)
    if wrapped.signing_method and wrapped.signing_method != reading.signing_method and result.ok:
        result = ocmf.VerificationResult(
            ocmf.Status.MALFORMED,
            f"signingMethod {wrapped.signing_method[:50]} differs from the OCMF SA",
        )
    single = len(reading.values) == 1
    rows = []
    for index, value in enumerate(reading.values):
        nature = _nature(context, value.type, single, taken)
        outcome = result
        if outcome.ok and nature != SignedReading.Nature.INTERMEDIATE:
            outcome = ocmf.check_value(reading, value, facts, nature=nature) or outcome
        rows.append(
            Checked(
                nature,
                _digest(nature, reading.text, index),
                {
                    "raw": clean_text(reading.text),
                    "sent": sent if sent != reading.text else "",
                    "encoding": wrapped.encoding,
                    "signing_method": _stored(reading.signing_method, 50),
                    "public_key_sent": clean_text(wrapped.public_key)[:2500],
                    "meter_serial": _stored(reading.meter_serial, 64),
                    "pagination": _stored(reading.pagination, 20),
                    "value_wh": _bounded(value.value_wh),
                    "time": value.time,
                    "status": outcome.status,
                    "reason": _stored(outcome.reason, REASON_MAX),
                },
            )
        )
    return rows, reading


def _stored(text: str, limit: int) -> str:
    # The meter's strings (MS, PG, SA, ST) may hold NUL or a lone surrogate from a JSON escape,
    # which PostgreSQL refuses, and be longer than the column.
    return clean_text(text)[:limit]


def _bounded(value: Decimal | None) -> Decimal | None:
    if value is None or abs(value) >= Decimal(10) ** 15:
        return None
    return value.quantize(Decimal("0.001"))


def _pair(rows: list[Checked], readings: dict[str, ocmf.OcmfReading]) -> None:
    """Check the verified start and end together (ocmf.check_pair); a failed check marks the
    end reading."""
    start = next((r for r in rows if r.nature == SignedReading.Nature.START), None)
    end = next((r for r in reversed(rows) if r.nature == SignedReading.Nature.END), None)
    if start is None or end is None:
        return
    if (
        start.fields["status"] != ocmf.Status.VERIFIED
        or end.fields["status"] != ocmf.Status.VERIFIED
    ):
        return
    why = ocmf.check_pair(readings[start.digest], readings[end.digest])
    if why:
        end.fields["status"] = ocmf.Status.MALFORMED
        end.fields["reason"] = why


def session_signed_ingest(*, session_id: int) -> list[SignedReading]:
    """Read, verify and store the signed values of a session (idempotent); return its rows."""
    session = ChargingSession.objects.filter(pk=session_id).first()
    if session is None:
        return []
    found = _found(session)
    if not found:
        return list(SignedReading.objects.filter(session_id=session_id))
    keys = list(MeterKey.objects.filter(charger_id=session.charger_id))
    facts = ocmf.SessionFacts(started_at=session.started_at, stopped_at=session.stopped_at)
    rows: list[Checked] = []
    readings: dict[str, ocmf.OcmfReading] = {}
    taken: frozenset = frozenset()
    for index, item in enumerate(found):
        if item.extra and (index == 0 or not found[index - 1].extra):
            taken = frozenset({row.nature for row in rows}) - {SignedReading.Nature.INTERMEDIATE}
        checked, reading = _check(
            item, keys, facts, taken if item.extra else frozenset(), session.connector_id
        )
        for row in checked:
            if reading is not None:
                readings[row.digest] = reading
            if all(row.digest != seen.digest for seen in rows):
                rows.append(row)
    _pair(rows, readings)
    with transaction.atomic():
        for row in rows:
            SignedReading.objects.update_or_create(
                session_id=session_id,
                digest=row.digest,
                defaults={"nature": row.nature, **row.fields},
            )
        stored = list(SignedReading.objects.filter(session_id=session_id).order_by("time", "id"))
        _signed_energy_record(session, stored, keys)
    return stored


def _signed_energy_record(
    session: ChargingSession, rows: list[SignedReading], keys: list[MeterKey]
) -> None:
    """The session's energy is the signed one where its signed start and end verify (the same
    number on its page, API, receipt, statement and CDR as billing prices)."""
    summary = summarize(rows, keys, expected=bool(keys), port=session.connector_id)
    energy = summary.energy_wh if summary is not None and summary.verified else None
    if energy != session.signed_energy_wh:
        session_signed_energy_record(session_id=session.pk, energy_wh=energy)


def transaction_signed_ingest(*, charger_id: int, transaction_id: int) -> list[SignedReading]:
    """Ingest the signed values of the 1.6 session of this charger and transaction, if any."""
    session_id = (
        ChargingSession.objects.filter(charger_id=charger_id, transaction_id=transaction_id)
        .values_list("pk", flat=True)
        .first()
    )
    if session_id is None:
        return []  # a signed value before its start is stored: read when the session finishes
    return session_signed_ingest(session_id=session_id)


def charger_signed_recheck(*, charger_id: int, limit: int = 200) -> int:
    """Check again the latest signed sessions of a charger (after its key changed)."""
    ids = list(
        SignedReading.objects.filter(session__charger_id=charger_id)
        .order_by("-session_id")
        .values_list("session_id", flat=True)
        .distinct()[:limit]
    )
    for session_id in ids:
        session_signed_ingest(session_id=session_id)
    return len(ids)
