"""The per-charger idTag index of the message log holds only the rows with an idTag.

Every index costs each logged frame, and most frames (heartbeats, meter values, answers) carry
no idTag: a partial index took 15 % off the log's insert time (docs/performance.md, session 71).
On PostgreSQL the new index is built and the old one dropped CONCURRENTLY, so a deployed log of
millions of rows keeps taking frames meanwhile (a plain CREATE INDEX blocks its writes); hence
not atomic. SQLite (`make run`) rebuilds it in place.
"""

from django.db import migrations, models

OLD = models.Index(fields=["charger", "id_tag", "-id"], name="ocppmsg_charger_idtag")
NEW = models.Index(
    fields=["charger", "id_tag", "-id"],
    name="ocppmsg_charger_tagged",
    condition=~models.Q(id_tag=""),
)


def forwards(apps, schema_editor):
    model = apps.get_model("chargers", "OcppMessage")
    table = model._meta.db_table
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NEW.name} ON {table} "
            "(charger_id, id_tag, id DESC) WHERE NOT (id_tag = '')"
        )
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD.name}")
        return
    schema_editor.add_index(model, NEW)
    schema_editor.remove_index(model, OLD)


def backwards(apps, schema_editor):
    model = apps.get_model("chargers", "OcppMessage")
    table = model._meta.db_table
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {OLD.name} ON {table} "
            "(charger_id, id_tag, id DESC)"
        )
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW.name}")
        return
    schema_editor.add_index(model, OLD)
    schema_editor.remove_index(model, NEW)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("chargers", "0027_kwh_register_meter_start_stop")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="ocppmessage", name=OLD.name),
                migrations.AddIndex(model_name="ocppmessage", index=NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
