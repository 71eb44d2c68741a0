"""Two fewer index entries for most logged frames (issue 48).

The fleet-wide action index leaves out Heartbeat and MeterValues rows: an action filter across
the fleet for those finds their newest rows at once along the primary key. The timestamp index
goes: retention reads the log along its primary key (chargers/messagelog/retention.py). Every
index costs each logged frame (docs/performance.md). On PostgreSQL the new index is built and
the old ones dropped CONCURRENTLY, so a deployed log keeps taking frames meanwhile; hence not
atomic. SQLite (`make run`) changes them in place.
"""

from django.db import migrations, models

ACTION = models.Index(fields=["action", "-id"], name="ocppmsg_action")
TIMESTAMP = models.Index(fields=["timestamp"], name="ocppmsg_timestamp")
RARE = models.Index(
    fields=["action", "-id"],
    name="ocppmsg_action_rare",
    condition=~models.Q(action="Heartbeat") & ~models.Q(action="MeterValues"),
)


def forwards(apps, schema_editor):
    model = apps.get_model("chargers", "OcppMessage")
    table = model._meta.db_table
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {RARE.name} ON {table} (action, id DESC) "
            "WHERE (NOT (action = 'Heartbeat') AND NOT (action = 'MeterValues'))"
        )
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {ACTION.name}")
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {TIMESTAMP.name}")
        return
    schema_editor.add_index(model, RARE)
    schema_editor.remove_index(model, ACTION)
    schema_editor.remove_index(model, TIMESTAMP)


def backwards(apps, schema_editor):
    model = apps.get_model("chargers", "OcppMessage")
    table = model._meta.db_table
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {ACTION.name} ON {table} (action, id DESC)"
        )
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TIMESTAMP.name} ON {table} (timestamp)"
        )
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {RARE.name}")
        return
    schema_editor.add_index(model, ACTION)
    schema_editor.add_index(model, TIMESTAMP)
    schema_editor.remove_index(model, RARE)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("chargers", "0028_ocppmessage_charger_idtag_partial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="ocppmessage", name=ACTION.name),
                migrations.RemoveIndex(model_name="ocppmessage", name=TIMESTAMP.name),
                migrations.AddIndex(model_name="ocppmessage", index=RARE),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
