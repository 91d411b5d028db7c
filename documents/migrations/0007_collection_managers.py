"""Collection managers (documents.authority): the `manage_collection` permission and each
collection's `manage_principals`, which start as its owner (no manage grant exists yet)."""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.conf import settings
from django.db import migrations, models
from django.db.models import F, Func


def owners_manage(apps, schema_editor):
    apps.get_model("documents", "Collection").objects.update(
        manage_principals=Func(F("owner_id"), template="ARRAY[%(expressions)s]::bigint[]")
    )


class Migration(migrations.Migration):

    dependencies = [
        ('documents', '0006_hnsw_graph_400'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='collection',
            options={'ordering': ['name'], 'permissions': [('view_document', 'Can view the documents in this collection'), ('manage_collection', 'Can manage this collection and all its documents')]},
        ),
        migrations.AddField(
            model_name='collection',
            name='manage_principals',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), default=list, editable=False, size=None),
        ),
        migrations.RunPython(owners_manage, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='collection',
            index=django.contrib.postgres.indexes.GinIndex(fields=['manage_principals'], name='collection_manage_principals'),
        ),
    ]
