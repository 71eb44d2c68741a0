from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Concat


def checked_for_what_they_run(apps, schema_editor):
    """Chargers checked before: for the vendor/model/firmware they run now (their last boot), so
    the deploy does not ask the whole fleet again."""
    Charger = apps.get_model("chargers", "Charger")
    Charger.objects.filter(energy_reporting_checked_at__isnull=False).update(
        energy_reporting_checked_for=Concat(
            "vendor", Value("|"), "model", Value("|"), "firmware_version"
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("chargers", "0018_merge_p45_m46"),
    ]

    operations = [
        migrations.AddField(
            model_name="charger",
            name="energy_reporting_checked_for",
            field=models.CharField(blank=True, default="", editable=False, max_length=160),
        ),
        migrations.AddField(
            model_name="charger",
            name="energy_reporting_problems",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(checked_for_what_they_run, migrations.RunPython.noop),
    ]
