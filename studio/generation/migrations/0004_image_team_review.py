import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def fill_team(apps, schema_editor):
    GeneratedImage = apps.get_model("generation", "GeneratedImage")
    Job = apps.get_model("generation", "Job")
    for job_id, team_id in Job.objects.filter(images__isnull=False).values_list("id", "team_id").distinct():
        GeneratedImage.objects.filter(job_id=job_id).update(team_id=team_id)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("generation", "0003_staged_image"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="generatedimage",
            name="team",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="images",
                to="accounts.team",
            ),
        ),
        migrations.RunPython(fill_team, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="generatedimage",
            name="team",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="images",
                to="accounts.team",
            ),
        ),
        migrations.AddField(
            model_name="generatedimage",
            name="review_state",
            field=models.CharField(
                choices=[
                    ("in_review", "In review"),
                    ("approved", "Approved"),
                    ("changes_requested", "Changes requested"),
                    ("rejected", "Rejected"),
                ],
                db_index=True,
                default="in_review",
                max_length=24,
            ),
        ),
        migrations.AddField(
            model_name="generatedimage",
            name="reviewed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="generatedimage",
            name="reviewed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="generatedimage",
            index=models.Index(fields=["team", "-created_at", "-id"], name="image_gallery"),
        ),
    ]
