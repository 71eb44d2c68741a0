"""Pushed tokens belong to the partner's operator (issue 33: tokens crossed tenants), and the
parties a hub routes are recorded. Step 1: the columns, filled from each token's partner."""

import django.db.models.deletion
from django.db import migrations, models


def fill(apps, schema_editor):
    PushedToken = apps.get_model("roaming", "PushedToken")
    Partner = apps.get_model("roaming", "Partner")
    HubParty = apps.get_model("roaming", "HubParty")
    for partner in Partner.objects.all().only("pk", "organization_id"):
        PushedToken.objects.filter(partner_id=partner.pk).update(
            organization_id=partner.organization_id
        )
    # A hub keeps the parties it already pushed for (the first hub per party; a party connected
    # directly is its own partner's).
    direct = set(Partner.objects.exclude(msp=None).values_list("msp_id", flat=True))
    pushed = (
        PushedToken.objects.filter(partner__role="HUB")
        .order_by("id")
        .values_list("partner_id", "token__msp_id")
    )
    claimed = set()
    for partner_id, msp_id in pushed:
        if msp_id is None or msp_id in direct or msp_id in claimed:
            continue
        HubParty.objects.create(partner_id=partner_id, msp_id=msp_id)
        claimed.add(msp_id)


class Migration(migrations.Migration):
    dependencies = [
        ("authorization", "0005_token_and_decision_reservation"),
        ("backoffice", "0001_initial"),
        ("roaming", "0005_cdr"),
    ]

    operations = [
        migrations.CreateModel(
            name="HubParty",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "msp",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="hub_route",
                        to="authorization.mobilityserviceprovider",
                    ),
                ),
                (
                    "partner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="routed_parties",
                        to="roaming.partner",
                    ),
                ),
            ],
            options={"verbose_name_plural": "hub parties"},
        ),
        migrations.AddField(
            model_name="pushedtoken",
            name="organization",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="backoffice.organization",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
