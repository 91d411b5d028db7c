"""The ingestion service in this process (the worker's own behaviour is in
test_ingestion_worker): strategies, incremental embedding, retries, requeueing."""

from datetime import timedelta

import numpy as np
import psycopg
import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from documents.embedding import EmbeddingUnavailable, embedder
from documents.models import Collection, Document, DocumentVersion
from documents.services import ingestion
from documents.services.ingestion import documents_ingest
from documents.services.queue import documents_reprocess, documents_requeue_stalled
from documents.services.uploads import document_create
from tests.documents.factories import CollectionFactory
from tests.documents.files import good_files
from tests.handbook import ingest

pytestmark = pytest.mark.django_db


def _upload(collection, path_or_text, name=None):
    data = path_or_text.read_bytes() if name is None else path_or_text.encode()
    document, _ = document_create(
        collection=collection,
        owner=collection.owner,
        upload=ContentFile(data, name=name or path_or_text.name),
        enqueue=False,
    )
    return document


@pytest.mark.parametrize("strategy", Collection.Chunking.values)
def test_every_chunking_strategy_keeps_sections_offsets_and_size(strategy, tmp_path):
    collection = CollectionFactory(chunking=strategy, chunk_tokens=40, chunk_overlap=8)
    markdown = next(path for path in good_files(tmp_path) if path.suffix == ".md")
    document = _upload(collection, markdown)
    documents_ingest(document_ids=[document.pk])

    document.refresh_from_db()
    assert document.status == Document.Status.READY, document.error
    text = document.indexed_version.text
    chunks = list(document.chunks.order_by("ordinal"))
    assert {tuple(chunk.heading_path) for chunk in chunks} >= {
        ("Engineering guide", "Code review"),
        ("Engineering guide", "On-call"),
    }
    for chunk in chunks:
        assert chunk.token_count <= 40, (strategy, chunk.text)
        if strategy != "structure":  # HybridChunker writes tables as its own text
            assert text[chunk.char_start : chunk.char_end].strip() == chunk.text
    assert document.indexed_version.chunking["strategy"] == strategy


class CountingEmbedder:
    def __init__(self):
        self.real = embedder()
        self.model, self.dimensions = self.real.model, self.real.dimensions
        self.runtime, self.quantize = self.real.runtime, self.real.quantize
        self.texts = []

    def embed(self, texts):
        self.texts += list(texts)
        return self.real.embed(texts)


def test_a_new_version_embeds_only_the_passages_that_changed(monkeypatch):
    counting = CountingEmbedder()
    monkeypatch.setattr(ingestion, "embedder", lambda: counting)
    collection = CollectionFactory(chunking="recursive", chunk_tokens=30, chunk_overlap=0)
    paragraphs = [f"Paragraph {n} explains rule number {n} of the handbook." for n in range(6)]
    document = _upload(collection, "\n\n".join(paragraphs), name="rules.txt")
    documents_ingest(document_ids=[document.pk])
    first = len(counting.texts)
    before = dict(document.chunks.values_list("text", "vector__embedding"))

    paragraphs[5] = "Paragraph 5 now says something entirely different about parking."
    _upload(collection, "\n\n".join(paragraphs), name="rules.txt")
    counting.texts.clear()
    documents_ingest(document_ids=[document.pk])

    document.refresh_from_db()
    assert document.indexed_version.number == 2
    assert first > 1
    assert len(counting.texts) == 1 and "parking" in counting.texts[0]
    for text, vector in document.chunks.values_list("text", "vector__embedding"):
        if text in before:
            assert np.allclose(vector, before[text])


def test_a_document_embedded_with_another_quantisation_is_embedded_anew_whole(monkeypatch):
    """GIVEN a document whose passages were embedded with int8 weights WHEN it is processed
    again (reembed) by what embeds here (unquantised ONNX, unless it falls back) THEN every
    passage is embedded again, none reused, and the version records what embedded it."""
    counting = CountingEmbedder()
    monkeypatch.setattr(ingestion, "embedder", lambda: counting)
    collection = CollectionFactory(chunking="recursive", chunk_tokens=30, chunk_overlap=0)
    text = "\n\n".join(f"Paragraph {n} explains rule number {n} of the handbook." for n in range(6))
    document = _upload(collection, text, name="rules.txt")
    documents_ingest(document_ids=[document.pk])
    document.refresh_from_db()
    version = document.indexed_version
    # What embeds on this CPU: unquantised ONNX, or what it falls back to (documents.embedding).
    runs = (counting.runtime, counting.quantize)
    assert (version.embedding_runtime, version.embedding_quantize) == runs
    passages = len(counting.texts)
    DocumentVersion.objects.filter(pk=version.pk).update(
        embedding_runtime="onnx", embedding_quantize="int8"
    )
    counting.texts.clear()

    documents_reprocess(documents=Document.objects.filter(pk=document.pk))
    documents_ingest(document_ids=[document.pk])

    version.refresh_from_db()
    assert passages > 1 and len(counting.texts) == passages
    assert (version.embedding_runtime, version.embedding_quantize) == runs


def test_documents_embedded_together_share_the_embedding_time_by_passages():
    """GIVEN a one-passage and a many-passage document in one run WHEN they are embedded
    together THEN each document's embed seconds are its passages' share of the run's, so that
    they add up across documents."""
    collection = CollectionFactory(chunking="recursive", chunk_tokens=30, chunk_overlap=0)
    short = _upload(collection, "One short rule.", name="short.txt")
    text = "\n\n".join(f"Paragraph {n} explains rule number {n} of the handbook." for n in range(6))
    long = _upload(collection, text, name="long.txt")

    documents_ingest(document_ids=[short.pk, long.pk])

    short.refresh_from_db()
    long.refresh_from_db()
    passages = long.chunks.count()
    assert short.chunks.count() == 1 and passages > 1
    for stage in ("embed", "store"):
        shares = short.stage_seconds[stage], long.stage_seconds[stage]
        assert shares[0] > 0
        assert shares[1] == pytest.approx(shares[0] * passages, rel=0.1), stage


def test_transient_errors_are_retried_then_the_document_fails_after_the_last_try(
    monkeypatch, settings
):
    class Down:
        model, dimensions = "all-MiniLM-L6-v2", 384

        def embed(self, texts):
            raise EmbeddingUnavailable("connection refused")

    monkeypatch.setattr(ingestion, "embedder", lambda: Down())
    settings.INGEST_MAX_TRIES = 3
    document = _upload(CollectionFactory(), "Some text.", name="a.txt")
    for _ in range(2):
        with pytest.raises(EmbeddingUnavailable):
            documents_ingest(document_ids=[document.pk])
        document.refresh_from_db()
        assert document.status == Document.Status.EMBEDDING
    documents_ingest(document_ids=[document.pk])

    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert document.error == "Gave up after 3 tries: connection refused"
    documents_ingest(document_ids=[document.pk])  # a late duplicate delivery changes nothing
    assert Document.objects.get(pk=document.pk).attempts == 3


def test_documents_left_unfinished_are_queued_again(django_capture_on_commit_callbacks, queued):
    collection = CollectionFactory()
    waiting = _upload(collection, "Waiting.", name="w.txt")
    done = _upload(collection, "Done.", name="d.txt")
    Document.objects.filter(pk=done.pk).update(status=Document.Status.READY)

    with django_capture_on_commit_callbacks(execute=True):
        assert documents_requeue_stalled(older_than=3600, orphaned_after=3600) == 0
        assert documents_requeue_stalled(older_than=0, orphaned_after=3600) == 1
    assert queued == [[waiting.pk]]
    assert queued.queues == ["ingestion"]


def test_documents_no_worker_holds_are_queued_again_within_a_minute(
    django_capture_on_commit_callbacks, queued
):
    """GIVEN documents left in `embedding` two minutes ago, one still locked by a live worker's
    session, one whose worker is gone, and one just moved
    WHEN the sweep runs with the long timeout far off
    THEN only the one no session holds is queued again, back in pending, and the next sweeps
    leave it to that task."""
    collection = CollectionFactory()
    orphan, held, fresh, pending = (
        _upload(collection, f"Text {name}.", name=f"{name}.txt")
        for name in ("orphan", "held", "fresh", "pending")
    )
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    Document.objects.filter(pk__in=[orphan.pk, held.pk, fresh.pk]).update(
        status=Document.Status.EMBEDDING, updated_at=two_minutes_ago
    )
    Document.objects.filter(pk=fresh.pk).update(updated_at=timezone.now())
    Document.objects.filter(pk=pending.pk).update(updated_at=two_minutes_ago)
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as worker:
        worker.execute("SELECT pg_advisory_lock(%s)", [held.pk])
        with django_capture_on_commit_callbacks(execute=True):
            assert documents_requeue_stalled(older_than=600, orphaned_after=60) == 1
            assert documents_requeue_stalled(older_than=600, orphaned_after=30) == 0
    assert queued == [[orphan.pk]]
    orphan.refresh_from_db()
    assert orphan.status == Document.Status.PENDING
    with connection.cursor() as cursor:  # the sweep's probe left no lock behind
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone()[0] == 0


def test_a_text_too_short_to_tell_its_language_is_marked_unknown(db):
    """GIVEN a four-word rota, an English and a German paragraph WHEN they are indexed THEN
    the rota's language is "unknown" (py3langid's best guess for it is Nigerian Pidgin, at
    26%), the others' are found."""
    collection = CollectionFactory()
    texts = {
        "rota.md": "# Rota\n\nNight shift: Ana.",
        "leave.md": "# Leave\n\nEmployees get 25 days of annual leave per year, plus public "
        "holidays. Ask your manager before booking a trip.",
        "urlaub.md": "# Urlaub\n\nDie Mitarbeiter erhalten 25 Tage Urlaub im Jahr, dazu die "
        "gesetzlichen Feiertage.",
    }
    languages = {name: ingest(collection, name, text).language for name, text in texts.items()}

    assert languages == {"rota.md": "unknown", "leave.md": "en", "urlaub.md": "de"}
