# The activity feed now belongs to audit (see audit 0003); its table stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("gallery", "0002_comments_boards"),
        ("audit", "0003_activity_from_gallery"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Activity")],
        ),
    ]
