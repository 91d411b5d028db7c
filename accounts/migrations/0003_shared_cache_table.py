"""The table behind the shared cache (API rate limits) when no PRODRAG_CACHE_URL is set."""

from django.core.management import call_command
from django.db import migrations


def cache_table_create(apps, schema_editor):
    # Creates the table of every database-backed cache, if missing; nothing for Redis.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_api_token"),
    ]

    operations = [migrations.RunPython(cache_table_create, migrations.RunPython.noop)]
