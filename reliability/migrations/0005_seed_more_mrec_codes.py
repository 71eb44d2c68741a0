"""Seed the rest of the ChargeX MREC codes whose number and name could be confirmed, and map
every seeded code from the vendorErrorCode that carries it (docs/reliability.md, "Fault codes").

Sources: the ChargeX table at https://inl.gov/chargex/mrec (CX001-CX006, read in 0004), and
EVerest's error definitions (everest-core errors/evse_board_support.yaml and its OCPP error
mapping), which cite the ChargeX MREC document (Rev 5, 2023-09-12), name each code "MREC<n><Name>"
and send it as vendorErrorCode "CX0nn" with vendorId https://chargex.inl.gov. Their wording of
CX001-CX005 is ChargeX's word for word; descriptions are taken from there where given and left
empty where only the name was found. CX007, CX012, CX013, CX016 and CX021 could not be confirmed
from a source we could read: not seeded (enter them in the admin from the published table).
"""

from django.db import migrations

# (code, name, description)
CODES = [
    ("CX008", "EmergencyStop", "Emergency stop is pressed by the user (required if equipped)."),
    ("CX009", "AuthorizationTimeout", ""),
    ("CX010", "InvalidVehicleMode", "The vehicle is in an invalid mode for charging."),
    ("CX011", "CableCheckFault", ""),
    ("CX014", "PilotFault", "The control pilot voltage is out of range."),
    ("CX015", "PowerLoss", "The EVSE is unable to supply any power due to mains failure."),
    (
        "CX017",
        "EVSEContactorFault",
        "Contactors fail to open or close on EVSE's side. May also include welding related errors.",
    ),
    (
        "CX018",
        "CableOverTempDerate",
        "Temperature of charging cable or connector assembly is too high, resulting in reduced "
        "power operation.",
    ),
    (
        "CX019",
        "CableOverTempStop",
        "Temperature of charging cable or connector assembly is too high, resulting in a stopped "
        "charging session.",
    ),
    (
        "CX020",
        "PartialInsertion",
        "Cable latch is raised due to incomplete insertion into the vehicle charging port.",
    ),
    ("CX022", "ResistanceFault", ""),
    ("CX023", "ProximityFault", "The proximity voltage is out of range."),
    (
        "CX024",
        "ConnectorVoltageHigh",
        "The output voltage of EVSE is high before charging starts or after charging ends.",
    ),
    ("CX025", "BrokenLatch", "The latch on the connector is broken."),
    ("CX026", "CutCable", "The output cable has been severed from the EVSE."),
]

# CX006's description, not legible in the copy 0004 read; EVerest's wording matches its start.
UNDER_VOLTAGE = "Input voltage to the vehicle has dropped below an acceptable level."


def seed(apps, schema_editor):
    FaultCode = apps.get_model("reliability", "FaultCode")
    FaultCodeMapping = apps.get_model("reliability", "FaultCodeMapping")
    for code, name, description in CODES:
        FaultCode.objects.get_or_create(
            code=code, defaults={"name": name, "description": description}
        )
    FaultCode.objects.filter(code="CX006", description="").update(description=UNDER_VOLTAGE)
    # A charger that reports the MREC code itself (vendorErrorCode "CX002", any errorCode).
    for fault in FaultCode.objects.filter(code__regex=r"^CX0[0-9][0-9]$"):
        FaultCodeMapping.objects.get_or_create(
            error_code="", vendor="", vendor_error_code=fault.code, defaults={"fault_code": fault}
        )


def unseed(apps, schema_editor):
    apps.get_model("reliability", "FaultCodeMapping").objects.filter(
        error_code="", vendor="", vendor_error_code__regex=r"^CX0[0-9][0-9]$"
    ).delete()
    apps.get_model("reliability", "FaultCode").objects.filter(
        code__in=[c for c, _, _ in CODES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("reliability", "0004_seed_mrec_codes")]

    operations = [migrations.RunPython(seed, unseed)]
