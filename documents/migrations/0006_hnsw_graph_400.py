"""Every embedding model's HNSW index, rebuilt with the ef_construction of
documents.models.embedding_index (400; see there and docs/benchmarks.md) unless it was built
with it already, as migration 0005 builds with the current parameters. On a large table this
takes a while: raise `maintenance_work_mem` to the graph's size first (README, upgrades)."""

from django.db import migrations

import documents.models


def embedding_indexes_rebuild(apps, schema_editor):
    table = apps.get_model("documents", "ChunkEmbedding")
    used = documents.models.embedding_models_used(
        apps.get_model("documents", "DocumentVersion").objects
    )
    for model_name, dimensions in used:
        index = documents.models.embedding_index(model_name=model_name, dimensions=dimensions)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT reloptions FROM pg_class WHERE relname = %s AND relkind = 'i'",
                [index.name],
            )
            row = cursor.fetchone()
        if row and f"ef_construction={index.ef_construction}" in (row[0] or []):
            continue
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index.name)}")
        schema_editor.add_index(table, index)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0005_chunk_embedding"),
    ]

    # Backwards, the rebuilt index stays: it serves the same queries.
    operations = [migrations.RunPython(embedding_indexes_rebuild, migrations.RunPython.noop)]
