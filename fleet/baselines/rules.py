"""Configuration baselines, the rules alone (no Django): the requests a baseline makes in each
protocol, the charger's answers in that protocol's words, drift between a baseline and what the
charger reported, and when a boot makes a baseline due (docs/operations.md).

A setting is a 1.6 configuration key (its `variable`) or a 2.0.1 component/variable/attribute;
`Key` identifies it the way the charger reports it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

V16, V201 = "1.6", "2.0.1"

# Credentials are per charger and write-only (1.6 AuthorizationKey, OCPP-J 1.6 §6; 2.0.1
# SecurityCtrlr.BasicAuthPassword, A01): never part of a fleet-wide baseline (they have their
# own flow: the charger's Security tab) and never compared.
CREDENTIALS_16 = frozenset({"authorizationkey"})
CREDENTIALS_201 = frozenset({("securityctrlr", "basicauthpassword")})

# Answers that mean the value is now the charger's (1.6 ConfigurationStatus, 2.0.1
# SetVariableStatusEnumType); RebootRequired: once it reboots.
TAKEN = frozenset({"Accepted", "RebootRequired"})
REBOOT_REQUIRED = "RebootRequired"

# Drift states of one setting.
MATCHES, DRIFTED, UNKNOWN, WRITE_ONLY = "matches", "drifted", "not reported", "write-only"

Key = tuple[str, ...]


@dataclass(frozen=True)
class Setting:
    variable: str
    value: str
    component: str = ""
    component_instance: str = ""
    evse_id: int = 0
    connector_id: int = 0
    variable_instance: str = ""
    attribute_type: str = "Actual"

    @property
    def label(self) -> str:
        if not self.component:
            return self.variable
        parts = [
            self.component + (f"[{self.component_instance}]" if self.component_instance else "")
        ]
        if self.evse_id:
            parts.append(
                f"EVSE {self.evse_id}" + (f"/{self.connector_id}" if self.connector_id else "")
            )
        variable = self.variable + (f"[{self.variable_instance}]" if self.variable_instance else "")
        attribute = "" if self.attribute_type == "Actual" else f" ({self.attribute_type})"
        return f"{'.'.join([*parts, variable])}{attribute}"


def key_16(name: str) -> Key:
    return (name.strip().lower(),)  # 1.6 keys are CiString: compared without case


def key_201(
    component: str,
    component_instance: str,
    evse_id: int,
    connector_id: int,
    variable: str,
    variable_instance: str,
    attribute_type: str,
) -> Key:
    return (
        component,
        component_instance,
        str(evse_id or 0),
        str(connector_id or 0),
        variable,
        variable_instance,
        attribute_type or "Actual",
    )


def key_of(setting: Setting) -> Key:
    if not setting.component:
        return key_16(setting.variable)
    return key_201(
        setting.component,
        setting.component_instance,
        setting.evse_id,
        setting.connector_id,
        setting.variable,
        setting.variable_instance,
        setting.attribute_type,
    )


def is_credential(protocol: str, component: str, variable: str) -> bool:
    if protocol == V16:
        return variable.strip().lower() in CREDENTIALS_16
    return (component.lower(), variable.lower()) in CREDENTIALS_201


# -- requests -------------------------------------------------------------------------------------


def change_configuration_16(settings: Iterable[Setting]) -> list[dict]:
    """One ChangeConfiguration payload per key (1.6 changes one key per request)."""
    return [{"key": s.variable, "value": s.value} for s in settings]


def _component(setting: Setting) -> dict:
    component: dict = {"name": setting.component}
    if setting.component_instance:
        component["instance"] = setting.component_instance
    if setting.evse_id:
        component["evse"] = {"id": setting.evse_id}
        if setting.connector_id:
            component["evse"]["connectorId"] = setting.connector_id
    return component


def _variable(setting: Setting) -> dict:
    variable: dict = {"name": setting.variable}
    if setting.variable_instance:
        variable["instance"] = setting.variable_instance
    return variable


def set_variable_data(settings: Iterable[Setting]) -> list[dict]:
    """The setVariableData of one SetVariables (split by the charger's ItemsPerMessage where it
    is sent, chargers.devices.commands)."""
    return [
        {
            "attributeType": s.attribute_type or "Actual",
            "attributeValue": s.value,
            "component": _component(s),
            "variable": _variable(s),
        }
        for s in settings
    ]


def get_variable_data(settings: Iterable[Setting]) -> list[dict]:
    return [
        {
            "attributeType": s.attribute_type or "Actual",
            "component": _component(s),
            "variable": _variable(s),
        }
        for s in settings
    ]


def result_key(item: Mapping) -> Key:
    """The key of a setVariableResult / getVariableResult / reportData element."""
    component = item.get("component") if isinstance(item.get("component"), dict) else {}
    variable = item.get("variable") if isinstance(item.get("variable"), dict) else {}
    assert isinstance(component, dict) and isinstance(variable, dict)
    evse = component.get("evse") if isinstance(component.get("evse"), dict) else {}
    assert isinstance(evse, dict)
    return key_201(
        str(component.get("name", "")),
        str(component.get("instance", "")),
        int(evse.get("id") or 0),
        int(evse.get("connectorId") or 0),
        str(variable.get("name", "")),
        str(variable.get("instance", "")),
        str(item.get("attributeType") or "Actual"),
    )


def statuses_201(settings: list[Setting], results: list) -> list[str | None]:
    """Each setting's attributeStatus from a SetVariables answer (matched by component and
    variable; None: the charger did not answer for it)."""
    found = {
        result_key(r): str(r.get("attributeStatus", ""))
        for r in results
        if isinstance(r, dict) and r.get("attributeStatus")
    }
    return [found.get(key_of(s)) for s in settings]


# -- outcome --------------------------------------------------------------------------------------


def outcome(statuses: list[str | None]) -> str:
    """A charger's application in one word (BaselineApplication.Outcome): `failed` when nothing
    was answered, `partial` when a value was refused or went unanswered, `reboot` when every
    value was taken and one needs a reboot, else `applied`."""
    if statuses and all(s is None for s in statuses):
        return "failed"
    if any(s not in TAKEN for s in statuses):
        return "partial"
    return "reboot" if REBOOT_REQUIRED in statuses else "applied"


def reboot_to_ask(statuses: list[str | None], version: int, asked_version: int | None) -> bool:
    """Whether to reset the charger now: a value needs a reboot and no reboot was asked for
    this version yet. Once per version: the boot that follows finds it applied, and a charger
    that keeps answering RebootRequired is never reset in a loop."""
    return REBOOT_REQUIRED in statuses and asked_version != version


def boot_due(
    *,
    baseline_version: int,
    fingerprint: str,
    last_boot_at: datetime | None,
    applied_version: int | None,
    applied_fingerprint: str,
    applied_outcome: str,
    applied_at: datetime | None,
) -> bool:
    """Whether a boot makes the baseline due on a charger: never applied, or the charger
    booted since its last application and that application is of another baseline version,
    was made to another vendor/model/firmware, or never reached the charger. A reconnect (or the
    reboot a baseline asked for) that changes nothing is not due."""
    if last_boot_at is None:
        return False
    if applied_version is None or applied_at is None:
        return True
    if last_boot_at <= applied_at:
        return False
    return (
        applied_version != baseline_version
        or applied_fingerprint != fingerprint
        or applied_outcome in ("offline", "failed")
    )


# -- drift ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reported:
    value: str | None  # None: reported without a value (a write-only variable)
    write_only: bool = False


@dataclass(frozen=True)
class Drift:
    setting: Setting
    reported: str | None
    state: str  # MATCHES, DRIFTED, UNKNOWN, WRITE_ONLY


_BOOLEANS = {"true", "false"}


def values_equal(wanted: str, reported: str) -> bool:
    """Values as a charger reports them: booleans without case ("True"/"true"), numbers by value
    ("60" and "60.0"), lists of a 1.6 CSL without spaces; else exactly."""
    a, b = wanted.strip(), reported.strip()
    if a == b:
        return True
    if a.lower() in _BOOLEANS and b.lower() in _BOOLEANS:
        return a.lower() == b.lower()
    try:
        return float(a) == float(b)
    except ValueError:
        pass
    if "," in a or "," in b:
        return [p.strip() for p in a.split(",")] == [p.strip() for p in b.split(",")]
    return False


def drift(
    protocol: str, settings: Iterable[Setting], reported: Mapping[Key, Reported]
) -> list[Drift]:
    """Each setting against what the charger last reported. A credential or a variable the
    charger reports write-only is never drift (its value cannot be read back)."""
    rows = []
    for s in settings:
        seen = reported.get(key_of(s))
        if is_credential(protocol, s.component, s.variable) or (seen and seen.write_only):
            rows.append(Drift(s, None, WRITE_ONLY))
        elif seen is None or seen.value is None:
            rows.append(Drift(s, None, UNKNOWN))
        else:
            state = MATCHES if values_equal(s.value, seen.value) else DRIFTED
            rows.append(Drift(s, seen.value, state))
    return rows


def reported_16(events: Iterable[tuple[str, Mapping, object]]) -> dict[Key, Reported]:
    """A 1.6 charger's keys from its answered commands, oldest first: (action, payload,
    response) of GetConfiguration (its configurationKey) and ChangeConfiguration (the value it
    took). A later one wins."""
    found: dict[Key, Reported] = {}
    for action, payload, response in events:
        if action == "GetConfiguration" and isinstance(response, dict):
            keys = response.get("configurationKey")
            for item in keys if isinstance(keys, list) else []:
                if isinstance(item, dict) and isinstance(item.get("key"), str):
                    value = item.get("value")
                    found[key_16(item["key"])] = Reported(value if isinstance(value, str) else None)
        elif (
            action == "ChangeConfiguration"
            and isinstance(response, dict)
            and response.get("status") in TAKEN
            and isinstance(payload.get("key"), str)
        ):
            found[key_16(payload["key"])] = Reported(str(payload.get("value", "")))
    return found
