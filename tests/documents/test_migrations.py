from django.db import connection

from documents.models import ChunkEmbedding, embedding_index
from tests.documents.factories import ChunkEmbeddingFactory
from tests.migrating import migrate

BEFORE = [("documents", "0004_hnsw_graph")]
AFTER = [("documents", "0005_chunk_embedding")]
GRAPH = [("documents", "0006_hnsw_graph_400")]


def _indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


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

    migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, embedding_model, (embedding::real[])[1] FROM documents_chunk")
        before = {pk: (model, first) for pk, model, first in cursor.fetchall()}
    assert before == {pk: (settings.EMBEDDING_MODEL, first) for pk, first in vectors.items()}
    assert index.name in _indexes("documents_chunk")

    migrate(AFTER)
    moved = ChunkEmbedding.objects.values_list("chunk_id", "embedding_model", "embedding")
    assert {pk: (model, vector[0]) for pk, model, vector in moved} == before
    assert index.name in _indexes("documents_chunkembedding")
    assert index.name not in _indexes("documents_chunk")


def _index_build(name: str) -> tuple[int, list[str]]:
    """The index's storage (a rebuild gives it new storage) and its build options."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relfilenode, reloptions FROM pg_class WHERE relname = %s", [name])
        return cursor.fetchone()


def test_an_hnsw_index_built_with_a_smaller_graph_is_rebuilt_once(
    migrated_back_and_forth, settings
):
    """GIVEN the vector table's index built with ef_construction 200 (as migration 0005 built
    it before) WHEN migration 0006 runs THEN the index is rebuilt with 400 and still serves
    the vectors; WHEN it runs again on that index THEN the index is left as it is."""
    ChunkEmbeddingFactory.create_batch(3)
    index = embedding_index(
        model_name=settings.EMBEDDING_MODEL, dimensions=settings.EMBEDDING_DIMENSIONS
    )
    migrate(AFTER)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {index.name}")
        cursor.execute(
            f"CREATE INDEX {index.name} ON documents_chunkembedding USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 200) "
            "WHERE embedding_model = %s",
            [settings.EMBEDDING_MODEL],
        )
    assert _index_build(index.name)[1] == ["m=16", "ef_construction=200"]

    migrate(GRAPH)
    storage, options = _index_build(index.name)
    assert options == ["m=16", "ef_construction=400"]

    migrate(AFTER)
    migrate(GRAPH)
    assert _index_build(index.name) == (storage, options)
