"""All 26 ChargeX MREC codes with responsibility and class, and where each row was read
(issue 58 item 2; the table is /work/shared/reference/fault-codes.md, docs/reliability.md "Fault
codes"). Adds the five codes 0005 could not source (CX007, CX012, CX013, CX016, CX021), marked as
resting on a secondary source alone; maps each from the vendorErrorCode / techCode that carries it
(EVerest sends "CXnnn") and CX007 from the 1.6 errorCode WeakSignal. What an agent edited in the
admin stays: a name is only corrected where it is still the seeded one, a description only filled
where empty."""

from django.db import migrations, models


INL = "INL's ChargeX MREC page (inl.gov/chargex/mrec)"
KWWHAT = (
    "appspace/kwwhat seeds/chargex_mrec_codes.csv, transcribed from the ChargeX MREC report "
    "(kwwhat PR #156)"
)
EVEREST = "cross-checked against EVerest's MrecErrorMapping"
PRIMARY_INL = f"{INL}; responsibility and class: {KWWHAT}"
CHECKED = f"{KWWHAT}; {EVEREST}"
SECONDARY = f"{KWWHAT} alone (a secondary source)"

# (code, name, meaning, responsibility, class)
CODES = [
    (
        "CX001",
        "ConnectorLockFailure",
        "connector lock failed to engage/disengage",
        "U, V",
        "safety, security",
    ),
    ("CX002", "GroundFailure", "ground fault / RCD tripped", "S, V", "safety, maintenance"),
    ("CX003", "HighTemperature", "over-temperature, the EVSE derates or stops", "S", "safety"),
    ("CX004", "OverCurrentFailure", "over-current", "S, V", "safety"),
    ("CX005", "OverVoltage", "over-voltage", "S, V", "safety"),
    ("CX006", "UnderVoltage", "under-voltage", "S, V", "safety"),
    (
        "CX007",
        "WeakSignal",
        "The wireless communication device reports a weak signal.",
        "C, S",
        "authorization",
    ),
    ("CX008", "EmergencyStop", "emergency stop pressed", "U, S", "safety"),
    (
        "CX009",
        "AuthorizationTimeout",
        "authorization did not complete in time",
        "U, C, S, V",
        "security, authorization",
    ),
    (
        "CX010",
        "InvalidVehicleMode",
        "the vehicle is in a mode that does not allow charging",
        "U, V",
        "safety",
    ),
    ("CX011", "CableCheckFailure", "DC cable check failed", "S, V", "safety, maintenance"),
    (
        "CX012",
        "PreChargeFailure",
        "The EVSE did not reach the pre-charge voltage.",
        "S, V",
        "safety",
    ),
    ("CX013", "NoInternet", "The EVSE has no internet connectivity.", "C, S", "authorization"),
    ("CX014", "PilotFault", "control pilot fault", "S, V", "maintenance"),
    ("CX015", "PowerLoss", "mains power failure", "S", "safety, maintenance"),
    (
        "CX016",
        "EVContactorFault",
        "The vehicle-side contactors fail to open or close, incl. welding.",
        "V",
        "safety",
    ),
    ("CX017", "EVSEContactorFault", "the EVSE's contactors fail to open or close", "S", "safety"),
    ("CX018", "CableOverTempDerate", "cable over-temperature, derating", "S", "safety"),
    ("CX019", "CableOverTempStop", "cable over-temperature, stop", "S, V", "safety"),
    ("CX020", "PartialInsertion", "connector partially inserted", "U, S, V", "safety"),
    (
        "CX021",
        "CapacitanceFault",
        "The insulation monitor tripped on high capacitance during charging.",
        "S, V",
        "safety",
    ),
    (
        "CX022",
        "ResistanceFault",
        "the insulation monitor tripped on low resistance",
        "S, V",
        "safety",
    ),
    ("CX023", "ProximityFault", "proximity pilot fault", "S, V", "safety, maintenance"),
    (
        "CX024",
        "ConnectorVoltageHigh",
        "voltage on the connector when there should be none",
        "S",
        "safety",
    ),
    ("CX025", "BrokenLatch", "broken connector latch", "C, S", "safety, security"),
    ("CX026", "CutCable", "cut cable", "C, S", "safety, maintenance"),
]
SECONDARY_CODES = {"CX007", "CX012", "CX013", "CX016", "CX021"}
# Names an earlier migration seeded differently from the table (EVerest's word); corrected only
# while unchanged.
OLD_NAMES = {"CX011": "CableCheckFault"}


def source_of(code: str) -> str:
    if code in SECONDARY_CODES:
        return SECONDARY
    return PRIMARY_INL if code <= "CX006" else CHECKED


def seed(apps, schema_editor):
    FaultCode = apps.get_model("reliability", "FaultCode")
    FaultCodeMapping = apps.get_model("reliability", "FaultCodeMapping")
    for code, name, meaning, responsibility, fault_class in CODES:
        fault, created = FaultCode.objects.get_or_create(
            code=code, defaults={"name": name, "description": meaning}
        )
        if not created and fault.name == OLD_NAMES.get(code):
            fault.name = name
        if not fault.description:
            fault.description = meaning
        fault.responsibility = fault.responsibility or responsibility
        fault.fault_class = fault.fault_class or fault_class
        fault.source = fault.source or source_of(code)
        fault.secondary_source = code in SECONDARY_CODES
        fault.save()
        FaultCodeMapping.objects.get_or_create(
            error_code="", vendor="", vendor_error_code=code, defaults={"fault_code": fault}
        )
    # 1.6's own errorCode for a weak signal is CX007's meaning.
    FaultCodeMapping.objects.get_or_create(
        error_code="WeakSignal",
        vendor="",
        vendor_error_code="",
        defaults={"fault_code": FaultCode.objects.get(code="CX007")},
    )


def unseed(apps, schema_editor):
    FaultCode = apps.get_model("reliability", "FaultCode")
    FaultCode.objects.filter(code__in=SECONDARY_CODES).delete()
    FaultCode.objects.filter(code="CX011", name="CableCheckFailure").update(name="CableCheckFault")


class Migration(migrations.Migration):
    dependencies = [
        ("reliability", "0009_t47_alert_recipients"),
    ]

    operations = [
        migrations.AddField(
            model_name="faultcode",
            name="fault_class",
            field=models.CharField(
                blank=True,
                help_text="As MREC gives it, e.g. 'safety, maintenance'.",
                max_length=60,
                verbose_name="class",
            ),
        ),
        migrations.AddField(
            model_name="faultcode",
            name="responsibility",
            field=models.CharField(
                blank=True,
                help_text="Who MREC says may cause it: U EV user, C charging station operator, S charging station (EVSE), V vehicle; e.g. 'S, V'.",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="faultcode",
            name="secondary_source",
            field=models.BooleanField(
                default=False,
                help_text="The row rests on a secondary source alone: shown as such wherever it appears.",
            ),
        ),
        migrations.AddField(
            model_name="faultcode",
            name="source",
            field=models.CharField(
                blank=True,
                help_text="Where the code's row was read (shown with it).",
                max_length=300,
            ),
        ),
        migrations.RunPython(seed, unseed),
    ]
