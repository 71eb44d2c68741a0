"""Token group names unique per organization whatever their case ("Staff" and "staff" were two
groups when created at once). Groups already spelt alike are kept, with their cards and
properties: the later ones get a number ("staff (2)"), so nothing changes for chargers and a
person can merge or rename them."""

import django.db.models.functions.text
from django.db import migrations, models

NAME_LENGTH = 200


def _free_name(base: str, taken: set[str]) -> str:
    number = 2
    while True:
        suffix = f" ({number})"
        name = base[: NAME_LENGTH - len(suffix)] + suffix
        if name.lower() not in taken:
            return name
        number += 1


def number_case_duplicates(apps, schema_editor):
    TokenGroup = apps.get_model("authorization", "TokenGroup")
    taken: dict[int, set[str]] = {}
    for group in TokenGroup.objects.order_by("organization_id", "created_at", "pk"):
        names = taken.setdefault(group.organization_id, set())
        if group.name.lower() in names:
            group.name = _free_name(group.name, names | _all_names(TokenGroup, group))
            group.save(update_fields=["name"])
        names.add(group.name.lower())


def _all_names(TokenGroup, group) -> set[str]:
    """Every name of the group's organization, as a later group may already be "staff (2)"."""
    return {
        name.lower()
        for name in TokenGroup.objects.filter(organization_id=group.organization_id).values_list(
            "name", flat=True
        )
    }


class Migration(migrations.Migration):
    dependencies = [
        ("authorization", "0007_msp_via_hub"),
        ("backoffice", "0004_idempotent_request"),
    ]

    operations = [
        migrations.RunPython(number_case_duplicates, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="tokengroup",
            name="unique_group_name",
        ),
        migrations.AddConstraint(
            model_name="tokengroup",
            constraint=models.UniqueConstraint(
                models.F("organization"),
                django.db.models.functions.text.Lower("name"),
                name="unique_group_name_ci",
                violation_error_message="A group with this name exists already.",
            ),
        ),
    ]
