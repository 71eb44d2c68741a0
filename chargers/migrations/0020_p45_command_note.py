from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chargers", "0019_p45_rate_units"),
    ]

    operations = [
        migrations.AddField(
            model_name="command",
            name="note",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
    ]
