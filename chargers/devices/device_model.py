"""The standardized device model of OCPP 2.0.1 (part 2 appendices 3 and 4). Pure: no Django.

A NotifyReport row is marked "standardized" when its component is one of appendix 3 and its
variable is one the appendix lists for that component, or one of the generic standardized
variables of appendix 4 (which any component may carry). Names were taken from the appendix
tables of edition 3 (v1.4); a vendor's own components and variables are stored the same way,
only not marked.
"""

from __future__ import annotations

import json

# Appendix 3: standardized components and the variables each one defines.
COMPONENT_VARIABLES: dict[str, frozenset[str]] = {
    "AlignedDataCtrl": frozenset(
        [
            "Available",
            "Enabled",
            "Interval",
            "Measurands",
            "SendDuringIdle",
            "SignReadings",
            "TxEndedInterval",
            "TxEndedMeasurands",
        ]
    ),
    "AuthCtrl": frozenset(
        [
            "AdditionalInfoItemsPerMessage",
            "DisableRemoteAuthorization",
            "Enabled",
            "LocalAuthorizationOffline",
            "LocalPreAuthorization",
            "MasterPassGroupId",
            "OfflineTxForUnknownIdEnabled",
        ]
    ),
    "AuthCacheCtrl": frozenset(
        ["Available", "DisablePostAuthorize", "Enabled", "LifeTime", "Policy"]
    ),
    "CHAdeMOCtrl": frozenset(
        [
            "Active",
            "CHAdeMOProtocolNumber",
            "Complete",
            "DynamicControl",
            "Enabled",
            "HighCurrentControl",
            "HighVoltageControl",
            "Problem",
            "SelftestActive",
            "Tripped",
            "VehicleStatus",
        ]
    ),
    "ClockCtrl": frozenset(
        [
            "DateTime",
            "NextTimeOffsetTransitionDateTime",
            "NtpServerUri",
            "NtpSource",
            "TimeAdjustmentReportingThreshold",
            "TimeOffset",
            "TimeSource",
            "TimeZone",
        ]
    ),
    "CustomizationCtrlr": frozenset(["CustomImplementationEnabled"]),
    "DeviceDataCtrl": frozenset(["BytesPerMessage", "ItemsPerMessage", "ValueSize"]),
    "DisplayMessageCtrl": frozenset(
        ["Available", "DisplayMessages", "Enabled", "PersonalMessageSize", "SupportedFormats"]
    ),
    "ISO15118Ctrl": frozenset(
        [
            "Active",
            "CentralContractValidationAllow",
            "Complete",
            "ContractCertificateInstallationEnabled",
            "ContractValidationOffline",
            "CountryName",
            "Enabled",
            "MaxScheduleEntries",
            "OrganizationName",
            "PnCEnabled",
            "Problem",
            "RequestMeteringReceipt",
            "RequestedEnergyTransferMode",
            "SeccId",
            "SelftestActive",
            "Tripped",
            "V2GCertificateInstallationEnabled",
        ]
    ),
    "LocalAuthListCtrlr": frozenset(
        [
            "Available",
            "BytesPerMessage",
            "DisablePostAuthorize",
            "Enabled",
            "Entries",
            "ItemsPerMessage",
            "Storage",
        ]
    ),
    "MonitoringCtrl": frozenset(
        [
            "ActiveMonitoringBase",
            "ActiveMonitoringLevel",
            "Available",
            "BytesPerMessage",
            "Enabled",
            "ItemsPerMessage",
            "MonitoringBase",
            "MonitoringLevel",
            "OfflineQueuingSeverity",
        ]
    ),
    "OCPPCommCtrl": frozenset(
        [
            "ActiveNetworkProfile",
            "FieldLength",
            "FileTransferProtocols",
            "HeartbeatInterval",
            "MessageAttemptInterval",
            "MessageAttempts",
            "MessageTimeout",
            "MinimumStatusDuration",
            "NetworkConfigurationPriority",
            "NetworkProfileConnectionAttempts",
            "OfflineThreshold",
            "PublicKeyWithSignedMeterValue",
            "QueueAllMessages",
            "ResetRetries",
            "RetryBackOffRandomRange",
            "RetryBackOffRepeatTimes",
            "RetryBackOffWaitMinimum",
            "UnlockOnEVSideDisconnect",
            "WebSocketPingInterval",
        ]
    ),
    "ReservationCtrl": frozenset(["Available", "Enabled", "NonEvseSpecific"]),
    "SampleDataCtrl": frozenset(
        [
            "Available",
            "Enabled",
            "RegisterValuesWithoutPhases",
            "SignReadings",
            "TxEndedInterval",
            "TxEndedMeasurands",
            "TxStartedMeasurands",
            "TxUpdatedInterval",
            "TxUpdatedMeasurands",
        ]
    ),
    "SecurityCtrl": frozenset(
        [
            "AdditionalRootCertificateCheck",
            "BasicAuthPassword",
            "CertSigningRepeatTimes",
            "CertSigningWaitMinimum",
            "Identity",
            "MaxCertificateChainSize",
            "OrganizationName",
            "SecurityProfile",
        ]
    ),
    "SmartChargingCtrl": frozenset(
        [
            "ACPhaseSwitchingSupported",
            "Available",
            "Enabled",
            "Entries",
            "ExternalControlSignalsEnabled",
            "LimitChangeSignificance",
            "NotifyChargingLimitWithSched",
            "PeriodsPerSchedule",
            "Phases3to1",
            "ProfileStackLevel",
            "RateUnit",
        ]
    ),
    "TariffCostCtrl": frozenset(
        ["Available", "Currency", "Enabled", "TariffFallbackMessage", "TotalCostFallbackMessage"]
    ),
    "TxCtrl": frozenset(
        [
            "EVConnectionTimeOut",
            "MaxEnergyOnInvalidId",
            "StopTxOnEVSideDisconnect",
            "StopTxOnInvalidId",
            "TxBeforeAcceptedEnabled",
            "TxStartPoint",
            "TxStopPoint",
        ]
    ),
    "AccessBarrier": frozenset([]),
    "AcDcConverter": frozenset([]),
    "AcPhaseSelector": frozenset([]),
    "Actuator": frozenset([]),
    "AirCoolingSystem": frozenset([]),
    "AreaVentilation": frozenset([]),
    "BayOccupancySensor": frozenset([]),
    "BeaconLighting": frozenset([]),
    "CableBreakawaySensor": frozenset([]),
    "CaseAccessSensor": frozenset([]),
    "ChargingStation": frozenset(
        ["AvailabilityState", "Available", "Model", "SerialNumber", "SupplyPhases", "VendorName"]
    ),
    "ChargingStatusIndicator": frozenset([]),
    "ConnectedEV": frozenset(
        [
            "Available",
            "ChargingCompleteBulk",
            "ChargingCompleteFull",
            "DepartureTime",
            "EnergyCapacity",
            "ProtocolAgreed",
            "ProtocolSupportedByEV",
            "RemainingTimeBulk",
            "RemainingTimeFullactual",
            "StateOfChargeBulk",
            "StateOfChargeactual",
            "Vehiceld",
        ]
    ),
    "Connector": frozenset([]),
    "ConnectorHolsterRelease": frozenset([]),
    "ConnectorHolsterSensor": frozenset([]),
    "ConnectorPlugRetentionLock": frozenset([]),
    "ConnectorProtectionRelease": frozenset([]),
    "Controller": frozenset([]),
    "ControlMetering": frozenset([]),
    "CPPWMController": frozenset([]),
    "DataLink": frozenset([]),
    "Display": frozenset([]),
    "DistributionPanel": frozenset([]),
    "ElectricalFeed": frozenset([]),
    "ELVSupply": frozenset([]),
    "EmergencyStopSensor": frozenset([]),
    "EnvironmentalLighting": frozenset([]),
    "EVRetentionLock": frozenset([]),
    "EVSE": frozenset([]),
    "ExternalTemperatureSensor": frozenset([]),
    "FiscalMetering": frozenset([]),
    "FloodSensor": frozenset([]),
    "GroundIsolationProtection": frozenset([]),
    "Heater": frozenset([]),
    "HumiditySensor": frozenset([]),
    "LocalEnergyStorage": frozenset([]),
    "OverCurrentProtection": frozenset([]),
    "OverCurrentProtectionRecloser": frozenset([]),
    "PowerContactor": frozenset([]),
    "RCD": frozenset([]),
    "RCDRecloser": frozenset([]),
    "RealTimeClock": frozenset([]),
    "ShockSensor": frozenset([]),
    "SpacesCountSignage": frozenset([]),
    "Switch": frozenset([]),
    "TemperatureSensor": frozenset([]),
    "TiltSensor": frozenset([]),
    "TokenReader": frozenset([]),
    "UpstreamProtectionTrigger": frozenset([]),
    "Ullnput": frozenset([]),
    "VehicleIdSensor": frozenset([]),
}

# Appendix 4: standardized variables, usable on any component.
GENERIC_VARIABLES: frozenset[str] = frozenset(
    [
        "ACCurrent",
        "ACVoltage",
        "Active",
        "AllowReset",
        "Angle",
        "Attempts",
        "AvailabilityState",
        "Available",
        "Certificate",
        "ChargeProtocol",
        "ChargingCompleteBulk",
        "ChargingCompleteFull",
        "ChargingTime",
        "Color",
        "Complete",
        "ConnectedTime",
        "ConnectorType",
        "Count",
        "Currency",
        "CurrentImbalance",
        "DCCurrent",
        "DCVoltage",
        "DataText",
        "DateTime",
        "DepartureTime",
        "ECVariant",
        "Enabled",
        "Energy",
        "EnergyCapacity",
        "EnergyExport",
        "EnergyExportRegister",
        "EnergyImport",
        "EnergyImportRegister",
        "Entries",
        "Fallback",
        "FanSpeed",
        "FirmwareVersion",
        "Force",
        "Formats",
        "Frequency",
        "FuseRating",
        "Height",
        "Humidity",
        "Hysteresis",
        "ICCID",
        "IMSI",
        "ISO15118EvseId",
        "Impedance",
        "Interval",
        "Length",
        "Light",
        "Manufacturer",
        "Message",
        "MinimumStatusDuration",
        "Mode",
        "Model",
        "Name",
        "NetworkAddress",
        "Operated",
        "OperatingTimes",
        "Overload",
        "Percent",
        "PhaseRotation",
        "PostChargingTime",
        "Power",
        "Problem",
        "Protecting",
        "RemainingTimeBulk",
        "RemainingTimeFull",
        "SeccId",
        "SerialNumber",
        "SignalStrength",
        "State",
        "StateOfCharge",
        "StateOfChargeBulk",
        "Storage",
        "SupplyPhases",
        "Suspending",
        "Suspension",
        "Temperature",
        "Time",
        "TimeOffset",
        "Timeout",
        "Token",
        "TokenType",
        "Tries",
        "Tripped",
        "VehicleId",
        "VersionDate",
        "VersionNumber",
        "VoltageImbalance",
    ]
)


def is_standardized(component: str, variable: str) -> bool:
    """Return whether (component, variable) is in the standardized device model."""
    known = COMPONENT_VARIABLES.get(component)
    if known is None:
        return False
    return variable in known or variable in GENERIC_VARIABLES


# -- tariff and cost display (part 2 block I; appendix 3 TariffCostCtrl, part 2 §2.10) ---------

# Part 2 §2.10 names the component TariffCostCtrlr, appendix 3 TariffCostCtrl: chargers use both.
TARIFF_COST_COMPONENTS = frozenset({"TariffCostCtrlr", "TariffCostCtrl"})


def _flag(values: dict[tuple[str, str], str], variable: str, instance: str) -> bool | None:
    """A boolean of the instance ("Tariff" or "Cost"), else of the component as a whole."""
    for key in ((variable, instance), (variable, "")):
        if key in values:
            return values[key].strip().lower() == "true"
    return None


def shows(values: dict[tuple[str, str], str], instance: str) -> bool | None:
    """Whether the charger shows `instance` ("Tariff" or "Cost") to the driver, from its
    TariffCostCtrlr Enabled/Available values (by (variable, variableInstance)): True when
    enabled, or available and not disabled; False when disabled or not available; None when
    its device model says nothing."""
    enabled = _flag(values, "Enabled", instance)
    available = _flag(values, "Available", instance)
    if enabled is False or available is False:
        return False
    if enabled or available:
        return True
    return None


# -- GetVariables / SetVariables in messages the charger accepts (B05.FR.11, B06.FR.05) ----------

# DeviceDataCtrlr (appendix 3 spells it DeviceDataCtrl): ItemsPerMessage and BytesPerMessage,
# instance GetVariables / SetVariables, bound what one request of that action may carry.
DEVICE_DATA_COMPONENTS = ("DeviceDataCtrlr", "DeviceDataCtrl")
VARIABLE_LISTS = {"GetVariables": "getVariableData", "SetVariables": "setVariableData"}
VARIABLE_RESULTS = {"GetVariables": "getVariableResult", "SetVariables": "setVariableResult"}
# The frame around the payload: [2,"<a 36-character message id>","SetVariables",{...}].
_FRAME_OVERHEAD = len('[2,"","",]') + 36


def message_limit(value: object) -> int | None:
    """A reported ItemsPerMessage / BytesPerMessage: a positive integer, else None (no limit known)."""
    try:
        limit = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return limit if limit > 0 else None


def _size(action: str, key: str, items: list) -> int:
    payload = json.dumps({key: items}, separators=(",", ":"), ensure_ascii=False)
    return _FRAME_OVERHEAD + len(action) + len(payload.encode("utf-8"))


def split_variable_data(
    action: str, items: list, max_items: int | None, max_bytes: int | None
) -> list[list]:
    """`items` (getVariableData / setVariableData) in consecutive requests of at most `max_items`
    elements and `max_bytes` bytes of frame each, order kept. One element larger than
    `max_bytes` on its own goes alone (it cannot be made smaller; the charger may refuse it)."""
    key = VARIABLE_LISTS[action]
    parts: list[list] = []
    current: list = []
    for item in items:
        candidate = [*current, item]
        too_many = max_items is not None and len(candidate) > max_items
        too_big = max_bytes is not None and _size(action, key, candidate) > max_bytes
        if current and (too_many or too_big):
            parts.append(current)
            candidate = [item]
        current = candidate
    if current:
        parts.append(current)
    return parts
