# The worker's heartbeat moves from the core app to generation, with the worker's other
# bookkeeping: only Django's record of it changes. Its table (core_workerheartbeat) and
# rows stay as they are.

from django.db import migrations, models


def rename_content_type(apps, schema_editor, old_label, new_label, model):
    """Give the model's content type its new app label, so the permissions and admin log
    entries that point at it keep doing so."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    rows = ContentType.objects.using(schema_editor.connection.alias)
    old = rows.filter(app_label=old_label, model=model).first()
    made = rows.filter(app_label=new_label, model=model).first()
    if old is None:
        return
    if made is not None:
        # A row under the new label already: one that a migrate stopping between the two
        # halves of the move made afresh (rolling one app back, say). Granted to nobody, it
        # gives way to the old row, which carries the grants and the log entries; a granted
        # one is someone's, and remove_stale_contenttypes is the one to ask about the old.
        fresh = Permission.objects.using(schema_editor.connection.alias).filter(
            content_type=made
        )
        if fresh.filter(group__isnull=False).exists() or fresh.filter(user__isnull=False).exists():
            return
        made.delete()
    rows.filter(pk=old.pk).update(app_label=new_label)
    ContentType.objects.clear_cache()


def forwards(apps, schema_editor):
    rename_content_type(apps, schema_editor, "core", "generation", "workerheartbeat")


def backwards(apps, schema_editor):
    rename_content_type(apps, schema_editor, "generation", "core", "workerheartbeat")


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0013_model_price_to_accounts"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        # The table was made there.
        ("core", "0001_worker_heartbeat"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WorkerHeartbeat",
                    fields=[
                        ("name", models.CharField(max_length=200, primary_key=True, serialize=False)),
                        ("host", models.CharField(max_length=100)),
                        ("pid", models.PositiveIntegerField()),
                        ("started_at", models.DateTimeField()),
                        ("beat_at", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "core_workerheartbeat",
                        "ordering": ["name"],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
