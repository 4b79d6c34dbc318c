# The activity feed moves from the gallery app to audit, written by generation and the
# gallery alike: only Django's record of it changes. Its table (gallery_activity), index
# and rows stay as they are.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
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
    rename_content_type(apps, schema_editor, "gallery", "audit", "activity")


def backwards(apps, schema_editor):
    rename_content_type(apps, schema_editor, "audit", "gallery", "activity")


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_retry_download_action"),
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        # The table was made there, and its last change.
        ("gallery", "0002_comments_boards"),
        ("generation", "0012_job_model_finished_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Activity",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("verb", models.CharField(choices=[("generated", "generated"), ("reviewed", "set the review state of"), ("starred", "starred"), ("commented", "commented on"), ("deleted", "moved to the trash"), ("restored", "restored")], max_length=16)),
                        ("detail", models.CharField(blank=True, max_length=200)),
                        ("at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("actor", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("image", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="generation.generatedimage")),
                        ("job", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="generation.job")),
                        ("team", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="activity", to="accounts.team")),
                    ],
                    options={
                        "verbose_name_plural": "activity",
                        "db_table": "gallery_activity",
                        "ordering": ["-at", "-id"],
                        "indexes": [models.Index(fields=["team", "-at"], name="activity_feed")],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
