"""Seed the ChargeX MREC codes whose number, OCPP errorCode and description could be sourced
from https://inl.gov/chargex/mrec (docs/reliability.md, "Fault codes"); the rest of the 26 are
entered in the admin. Each is mapped from the OCPP 1.6 errorCode of the same name."""

from django.db import migrations

# (code, OCPP errorCode, description as published by ChargeX; CX006's was not legible in the
# copy we could read, so it is left for the admin).
CODES = [
    ("CX001", "ConnectorLockFailure", "Failure to lock or unlock connector on the vehicle side."),
    ("CX002", "GroundFailure", "Ground fault circuit interrupter has been activated."),
    ("CX003", "HighTemperature", "High temperature inside the EVSE is derating power delivery."),
    ("CX004", "OverCurrentFailure", "Over current protection device has tripped."),
    ("CX005", "OverVoltage", "Input voltage to the vehicle has risen above an acceptable level."),
    ("CX006", "UnderVoltage", ""),
]


def seed(apps, schema_editor):
    FaultCode = apps.get_model("reliability", "FaultCode")
    FaultCodeMapping = apps.get_model("reliability", "FaultCodeMapping")
    for code, error_code, description in CODES:
        fault, _ = FaultCode.objects.get_or_create(
            code=code, defaults={"name": error_code, "description": description}
        )
        FaultCodeMapping.objects.get_or_create(
            error_code=error_code, vendor="", vendor_error_code="", defaults={"fault_code": fault}
        )


def unseed(apps, schema_editor):
    apps.get_model("reliability", "FaultCode").objects.filter(
        code__in=[c for c, _, _ in CODES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("reliability", "0003_alerts_and_fault_codes")]

    operations = [migrations.RunPython(seed, unseed)]
