# The worker's heartbeat now belongs to generation (see generation 0014); its table stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_worker_heartbeat"),
        ("generation", "0014_worker_heartbeat_from_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WorkerHeartbeat")],
        ),
    ]
