from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The cache the web and worker processes share (CACHES in settings): its table is made
    # here so that `migrate`, which every deployment runs, is all it needs.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
