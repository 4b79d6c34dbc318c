# The price table moves from the generation app to accounts, with budgets: only Django's
# record of it changes. Its table (generation_modelprice) and rows stay as they are.

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
    rename_content_type(apps, schema_editor, "generation", "accounts", "modelprice")


def backwards(apps, schema_editor):
    rename_content_type(apps, schema_editor, "accounts", "generation", "modelprice")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_budgets"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        # The table was made there.
        ("generation", "0012_job_model_finished_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ModelPrice",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("model", models.CharField(max_length=64, unique=True)),
                        ("price_per_image", models.DecimalField(decimal_places=4, max_digits=10)),
                        ("currency", models.CharField(default="USD", max_length=3)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "generation_modelprice",
                        "ordering": ["model"],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
