"""Step 2 (a separate migration: PostgreSQL refuses ALTER TABLE with the fill's deferred FK
checks pending in the same transaction): the operator is required and the uniqueness is per
operator, so two operators can hold the same country/party/uid."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_initial"),
        ("roaming", "0006_pushed_token_organization_and_hub_party"),
    ]

    operations = [
        migrations.AlterField(
            model_name="pushedtoken",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="backoffice.organization",
            ),
        ),
        migrations.RemoveConstraint(model_name="pushedtoken", name="unique_pushed_token"),
        migrations.AddConstraint(
            model_name="pushedtoken",
            constraint=models.UniqueConstraint(
                fields=("organization", "country_code", "party_id", "uid", "type"),
                name="unique_pushed_token_per_org",
            ),
        ),
    ]
