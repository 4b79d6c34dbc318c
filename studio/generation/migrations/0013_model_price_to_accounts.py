# The price table now belongs to accounts (see accounts 0005); its table stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0012_job_model_finished_index"),
        ("accounts", "0005_model_price_from_generation"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ModelPrice")],
        ),
    ]
