"""Descriptions for the three seeded MREC codes that had none (CX009, CX011, CX022), from the
same source as 0005: EVerest's error definitions (errors/evse_manager.yaml), which cite ChargeX
MREC Rev 5. Only empty descriptions are filled: one an agent wrote in the admin stays."""

from django.db import migrations

DESCRIPTIONS = {
    "CX009": "No authorization was provided within the timeout after the cable was plugged in.",
    "CX011": "Cable check failed: the isolation monitor's self test failed before charging.",
    "CX022": (
        "An isolation monitoring device tripped on a low resistance to the chassis during "
        "charging."
    ),
}


def seed(apps, schema_editor):
    FaultCode = apps.get_model("reliability", "FaultCode")
    for code, description in DESCRIPTIONS.items():
        FaultCode.objects.filter(code=code, description="").update(description=description)


class Migration(migrations.Migration):
    dependencies = [("reliability", "0006_merge_20261124_1632")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
