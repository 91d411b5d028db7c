"""Index maintenance: full-text vectors of passages, and each embedding model's HNSW index."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import connection
from django.db.models import F, Func, OuterRef, Subquery, TextField, Value

from documents.models import (
    Chunk,
    ChunkEmbedding,
    Document,
    embedding_index,
)


def chunk_search_vectors_refresh(*, version_ids: Iterable[int]) -> int:
    """Compute the stored full-text vectors of these versions' chunks: the document title weighs
    most (A), then the heading path (B), then the passage text (D). Returns rows updated."""
    config = settings.FTS_CONFIG
    headings = Func(
        F("heading_path"), Value(" "), function="array_to_string", output_field=TextField()
    )
    title = Subquery(Document.objects.filter(pk=OuterRef("document_id")).values("title")[:1])
    return Chunk.objects.filter(version_id__in=list(version_ids)).update(
        search_vector=SearchVector(title, weight="A", config=config)
        + SearchVector(headings, weight="B", config=config)
        + SearchVector("text", weight="D", config=config)
    )


def embedding_index_ensure(*, model_name: str, dimensions: int) -> bool:
    """Build the HNSW index serving this embedding model's passages unless it exists (the
    first model's comes with the migrations; a later one's before its re-embedding, so that
    its vectors are searched through an index from the start). True if it was built. The
    build holds a SHARE lock on the vector table: writes wait for it, searches do not."""
    index = embedding_index(model_name=model_name, dimensions=dimensions)
    with connection.cursor() as cursor:
        existing = connection.introspection.get_constraints(cursor, ChunkEmbedding._meta.db_table)
    if index.name in existing:
        return False
    with connection.schema_editor() as editor:
        editor.add_index(ChunkEmbedding, index)
    return True
