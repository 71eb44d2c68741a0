# Issue 46 item 4: each price says whether it includes tax.

from decimal import Decimal

from django.db import migrations, models
from django.db.models import OuterRef, Subquery

HELP = (
    "On: the prices above include the tax (EU consumer prices). "
    "Off: the tax is added on top of them (e.g. US sales tax)."
)


def charges_keep_their_rate_percent(apps, schema_editor):
    """Charges priced before this migration: the tax percent of the rate they were priced with."""
    Rate = apps.get_model("billing", "Rate")
    SessionCharge = apps.get_model("billing", "SessionCharge")
    SessionCharge.objects.filter(rate__isnull=False).update(
        tax_percent=Subquery(Rate.objects.filter(pk=OuterRef("rate_id")).values("tax_percent")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_property_signature_policy"),
    ]

    operations = [
        # Existing prices keep today's computation (tax added on top) and now say so ...
        migrations.AddField(
            model_name="rate",
            name="prices_include_tax",
            field=models.BooleanField(
                default=False, help_text=HELP, verbose_name="Prices include tax"
            ),
        ),
        # ... and a new location's prices include tax, as EU consumer prices are shown.
        migrations.AlterField(
            model_name="rate",
            name="prices_include_tax",
            field=models.BooleanField(default=True, help_text=HELP, verbose_name="Prices include tax"),
        ),
        migrations.AddField(
            model_name="sessioncharge",
            name="prices_include_tax",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="sessioncharge",
            name="tax_percent",
            field=models.DecimalField(decimal_places=3, default=Decimal("0"), max_digits=6),
        ),
        migrations.RunPython(charges_keep_their_rate_percent, migrations.RunPython.noop),
    ]
