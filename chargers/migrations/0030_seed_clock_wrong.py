"""The `clock_wrong` deviation (chargers.ocpp.clock; docs/quirks.md): defined for support, no
model given it. Created when missing, never overwritten."""

from django.db import migrations

CODE = "clock_wrong"


def seed(apps, schema_editor):
    apps.get_model("chargers", "Deviation").objects.get_or_create(
        code=CODE,
        defaults={
            "name": "Clock not set or wrong",
            "description": "Message timestamps before 2015 (a clock that was never set: 1970 or "
            "2000 after a reboot without a battery behind it) or more than 10 minutes ahead of "
            "the central system's clock (OCPP 1.6 §4.6 and 2.0.1 B01: the charger should take "
            "its time from the BootNotification and Heartbeat answers).",
            "handling": "The time the message was received is used instead (a session's start "
            "and stop, meter readings, status changes), the message's Logs row says so, and a "
            "resent StartTransaction is still recognised as the same start. Recorded on the "
            "charger; a profile naming it only stops the recording.",
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("chargers", "Deviation").objects.filter(code=CODE).delete()


class Migration(migrations.Migration):
    dependencies = [("chargers", "0029_log_indexes_rare_actions")]

    operations = [migrations.RunPython(seed, unseed)]
