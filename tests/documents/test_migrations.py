import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from documents.models import ChunkEmbedding, embedding_index
from tests.documents.factories import ChunkEmbeddingFactory

BEFORE = [("documents", "0004_hnsw_graph")]
AFTER = [("documents", "0005_chunk_embedding")]


def _migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def _indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


@pytest.fixture
def migrated_back_and_forth(transactional_db):
    yield
    _migrate()  # whatever the test did, the database ends as the other tests expect it


def test_vectors_move_to_their_own_table_and_back_with_their_hnsw_index(
    migrated_back_and_forth, settings
):
    """GIVEN passages with vectors WHEN the migration is reversed THEN the vectors are back
    in the chunk rows, under the chunk table's HNSW index; WHEN it is applied again THEN they
    are in documents_chunkembedding, whose index serves them."""
    vectors = {
        ChunkEmbeddingFactory(embedding=[float(i)] + [1.0] * 383).chunk_id: float(i)
        for i in range(3)
    }
    index = embedding_index(
        model_name=settings.EMBEDDING_MODEL, dimensions=settings.EMBEDDING_DIMENSIONS
    )

    _migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, embedding_model, (embedding::real[])[1] FROM documents_chunk")
        before = {pk: (model, first) for pk, model, first in cursor.fetchall()}
    assert before == {pk: (settings.EMBEDDING_MODEL, first) for pk, first in vectors.items()}
    assert index.name in _indexes("documents_chunk")

    _migrate(AFTER)
    moved = ChunkEmbedding.objects.values_list("chunk_id", "embedding_model", "embedding")
    assert {pk: (model, vector[0]) for pk, model, vector in moved} == before
    assert index.name in _indexes("documents_chunkembedding")
    assert index.name not in _indexes("documents_chunk")
