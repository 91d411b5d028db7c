"""The data model's constraints, versions, chunk storage and indexes."""

import pytest
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection
from django.db.models import F
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from documents.models import Chunk, ChunkEmbedding, Document
from documents.services.index import chunk_search_vectors_refresh
from documents.services.uploads import UploadOutcome, document_create
from tests.accounts.factories import UserFactory
from tests.documents.factories import (
    ChunkEmbeddingFactory,
    ChunkFactory,
    CollectionFactory,
    DocumentFactory,
    DocumentVersionFactory,
)

pytestmark = pytest.mark.django_db

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_identical_bytes_in_one_collection_return_the_existing_document():
    collection, owner = CollectionFactory(), UserFactory()
    first, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(b"same bytes", name="a.txt")
    )
    again, outcome_again = document_create(
        collection=collection, owner=owner, upload=ContentFile(b"same bytes", name="b.txt")
    )
    assert (outcome, outcome_again) == (UploadOutcome.CREATED, UploadOutcome.UNCHANGED)
    assert again.pk == first.pk
    assert Document.objects.filter(collection=collection).count() == 1


def test_identical_bytes_in_another_collection_make_a_new_document():
    owner = UserFactory()
    upload = ContentFile(b"same bytes", name="a.txt")
    first, _ = document_create(collection=CollectionFactory(), owner=owner, upload=upload)
    second, outcome = document_create(collection=CollectionFactory(), owner=owner, upload=upload)
    assert outcome == UploadOutcome.CREATED and second.pk != first.pk


def test_created_document_keeps_its_bytes_as_version_one():
    document, _ = document_create(
        collection=CollectionFactory(),
        owner=UserFactory(),
        upload=ContentFile(PDF_BYTES, name="report.bin"),
        metadata={"department": "hr"},
    )
    version = document.current_version
    assert version.number == 1
    assert version.file.read() == PDF_BYTES
    assert document.size == len(PDF_BYTES) == version.size
    assert document.status == Document.Status.PENDING
    assert "pending" in document.status_changed_at
    # The content decides the type, not the misleading extension.
    assert document.content_type == "application/pdf"
    assert document.title == "report.bin" and document.metadata == {"department": "hr"}


def test_text_without_magic_bytes_is_typed_by_its_name():
    document, _ = document_create(
        collection=CollectionFactory(),
        owner=UserFactory(),
        upload=ContentFile(b"# Title\n\nbody", name="notes.md"),
    )
    assert document.content_type == "text/markdown"


def test_new_bytes_from_a_known_source_become_its_next_version():
    collection, owner = CollectionFactory(), UserFactory()
    first, _ = document_create(
        collection=collection, owner=owner, upload=ContentFile(b"v1 text", name="policy.txt")
    )
    Document.objects.filter(pk=first.pk).update(status=Document.Status.READY)
    second, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(b"v2 text!", name="policy.txt")
    )
    assert outcome == UploadOutcome.NEW_VERSION and second.pk == first.pk
    assert second.current_version.number == 2
    assert second.current_version.file.read() == b"v2 text!"
    assert (second.size, second.status) == (8, Document.Status.PENDING)
    assert list(second.versions.values_list("number", "size")) == [(2, 8), (1, 7)]
    assert Document.objects.filter(collection=collection).count() == 1


def test_source_is_unique_per_collection():
    existing = DocumentFactory(source="handbook.pdf")
    with pytest.raises(IntegrityError):
        DocumentFactory(collection=existing.collection, source="handbook.pdf")


def test_external_id_is_unique_per_collection_when_set():
    collection = CollectionFactory()
    DocumentFactory(collection=collection, external_id="")
    DocumentFactory(collection=collection, external_id="")
    DocumentFactory(collection=collection, external_id="doc-1")
    with pytest.raises(IntegrityError):
        DocumentFactory(collection=collection, external_id="doc-1")


def test_version_numbers_are_unique_per_document():
    version = DocumentVersionFactory(number=1)
    with pytest.raises(IntegrityError):
        DocumentVersionFactory(document=version.document, number=1)


def test_chunk_ordinals_are_unique_per_version():
    chunk = ChunkFactory(ordinal=0)
    with pytest.raises(IntegrityError):
        ChunkFactory(version=chunk.version, ordinal=0)


def test_older_versions_stay_listed_after_a_new_one():
    document = DocumentFactory()
    DocumentVersionFactory(document=document, number=1)
    DocumentVersionFactory(document=document, number=2)
    assert list(document.versions.values_list("number", flat=True)) == [2, 1]


def test_title_and_headings_outrank_body_text_in_full_text_search():
    in_title = ChunkFactory(
        version__document__title="Parental leave policy", text="Apply four weeks ahead."
    )
    in_heading = ChunkFactory(
        version__document__title="Benefits",
        heading_path=["Parental leave"],
        text="Apply four weeks ahead.",
    )
    in_body = ChunkFactory(
        version__document__title="Benefits overview",
        text="Employees may take parental leave; apply four weeks ahead.",
    )
    for chunk in (in_title, in_heading, in_body):
        chunk_search_vectors_refresh(version_ids=[chunk.version_id])
    query = SearchQuery("parental leave", search_type="websearch", config="english")
    ranked = list(
        Chunk.objects.filter(search_vector=query)
        .annotate(rank=SearchRank(F("search_vector"), query))
        .order_by("-rank")
        .values_list("pk", flat=True)
    )
    assert ranked == [in_title.pk, in_heading.pk, in_body.pk]


def test_configured_model_has_an_hnsw_index_the_planner_uses(chunks_vacuumed, settings):
    dimensions = settings.EMBEDDING_DIMENSIONS
    for i in range(3):
        vector = [0.0] * dimensions
        vector[i] = 1.0
        ChunkEmbeddingFactory(embedding=vector)
    query = [1.0] + [0.0] * (dimensions - 1)
    nearest = (
        ChunkEmbedding.objects.filter(embedding_model=settings.EMBEDDING_MODEL)
        .annotate(
            distance=CosineDistance(Cast("embedding", VectorField(dimensions=dimensions)), query)
        )
        .order_by("distance")[:2]
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # three rows: force the index's plan
        plan = nearest.explain()
    assert "chunk_hnsw_" in plan
    assert nearest[0].embedding[0] == 1.0
