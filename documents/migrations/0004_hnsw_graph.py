"""The configured model's HNSW index, rebuilt with ef_construction 200 (see
documents.models.embedding_index and docs/benchmarks.md). On a large table this takes a
while: the index is built again from all of that model's passages."""

from django.conf import settings
from django.db import migrations

import documents.models


def embedding_index_rebuild(apps, schema_editor):
    index = documents.models.embedding_index(
        model_name=settings.EMBEDDING_MODEL, dimensions=settings.EMBEDDING_DIMENSIONS
    )
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index.name)}")
    schema_editor.add_index(apps.get_model("documents", "Chunk"), index)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0003_search_length"),
    ]

    # Backwards, the index built with 200 stays: it serves the same queries.
    operations = [migrations.RunPython(embedding_index_rebuild, migrations.RunPython.noop)]
