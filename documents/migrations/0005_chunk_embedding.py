"""Passage vectors move to a table of their own (see documents.models.ChunkEmbedding), with
each embedding model's HNSW index built anew there. On a large table this takes a while:
every vector is copied once and every model's index is built again."""

import django.db.models.deletion
import pgvector.django.vector
from django.db import migrations, models

import documents.models


def _models(apps) -> set[tuple[str, int]]:
    return documents.models.embedding_models_used(
        apps.get_model("documents", "DocumentVersion").objects
    )


def vectors_move(apps, schema_editor):
    schema_editor.execute(
        "INSERT INTO documents_chunkembedding (chunk_id, document_id, embedding_model, "
        "embedding) SELECT id, document_id, embedding_model, embedding FROM documents_chunk "
        "WHERE embedding IS NOT NULL"
    )


def vectors_move_back(apps, schema_editor):
    schema_editor.execute(
        "UPDATE documents_chunk ch SET embedding = e.embedding, "
        "embedding_model = e.embedding_model "
        "FROM documents_chunkembedding e WHERE e.chunk_id = ch.id"
    )
    chunk = apps.get_model("documents", "Chunk")
    for model_name, dimensions in _models(apps):
        index = documents.models.embedding_index(model_name=model_name, dimensions=dimensions)
        schema_editor.add_index(chunk, index)


def embedding_indexes_add(apps, schema_editor):
    table = apps.get_model("documents", "ChunkEmbedding")
    for model_name, dimensions in _models(apps):
        index = documents.models.embedding_index(model_name=model_name, dimensions=dimensions)
        schema_editor.add_index(table, index)


def embedding_indexes_remove(apps, schema_editor):
    for model_name, dimensions in _models(apps):
        index = documents.models.embedding_index(model_name=model_name, dimensions=dimensions)
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index.name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0004_hnsw_graph"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChunkEmbedding",
            fields=[
                (
                    "chunk",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="vector",
                        serialize=False,
                        to="documents.chunk",
                    ),
                ),
                ("embedding_model", models.CharField(max_length=200)),
                ("embedding", pgvector.django.vector.VectorField()),
                (
                    "document",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="documents.document",
                    ),
                ),
            ],
        ),
        migrations.RunPython(vectors_move, vectors_move_back),
        # Dropping the columns drops their HNSW indexes with them; the new table's indexes
        # take the same names.
        migrations.RemoveField(model_name="chunk", name="embedding"),
        migrations.RemoveField(model_name="chunk", name="embedding_model"),
        migrations.RunPython(embedding_indexes_add, embedding_indexes_remove),
    ]
