"""A charger's offline/online link at one instant is recorded once (the announcement and the
sync raced and both wrote it). Duplicates already stored are removed first, keeping the first."""

from django.db import migrations, models
from django.db.models import Min


def drop_duplicate_links(apps, schema_editor):
    PortEvent = apps.get_model("reliability", "PortEvent")
    links = PortEvent.objects.filter(kind__in=["offline", "online"])
    keep = links.values("charger_id", "kind", "at").annotate(first=Min("id")).values("first")
    duplicates = (
        links.values("charger_id", "kind", "at")
        .annotate(n=models.Count("id"))
        .filter(n__gt=1)
        .values_list("charger_id", "kind", "at")
    )
    for charger_id, kind, at in duplicates:
        links.filter(charger_id=charger_id, kind=kind, at=at).exclude(id__in=keep).delete()


class Migration(migrations.Migration):
    dependencies = [("reliability", "0012_firmware_outage_and_alert")]

    operations = [
        migrations.RunPython(drop_duplicate_links, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="portevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind__in", ["offline", "online"])),
                fields=("charger", "kind", "at"),
                name="unique_portevent_link",
            ),
        ),
    ]
