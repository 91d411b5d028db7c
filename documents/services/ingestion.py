"""The ingestion pipeline a worker runs: parse, chunk, embed, store."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import metrics
from documents.chunking import ChunkDraft, Outline, chunks_split, outline_build
from documents.embedding import Embedder, EmbeddingError, embedder
from documents.errors import TRANSIENT_ERRORS
from documents.models import (
    Chunk,
    ChunkEmbedding,
    Document,
    DocumentVersion,
)
from documents.parsing import (
    Limits,
    Parsed,
    ParseError,
    format_detect,
    text_decode,
    text_document,
)
from documents.sandbox import ParserSandbox
from documents.services.index import chunk_search_vectors_refresh
from documents.services.queue import ACTIVE, documents_lock_try, documents_unlock, status_set

_STAGE_NAMES = {Document.Status.PARSING: "parse", Document.Status.CHUNKING: "chunk"}
log = logging.getLogger("prodrag.ingest")


@dataclass
class _Work:
    """One document's way through a processing run."""

    document: Document
    version: DocumentVersion
    seconds: dict[str, float] = field(default_factory=dict)
    parsed: Parsed | None = None
    outline: Outline | None = None
    drafts: list[ChunkDraft] = field(default_factory=list)
    vectors: np.ndarray | None = None
    error: str = ""


def documents_ingest(*, document_ids: Sequence[int]) -> None:
    """Parse, chunk, embed and store these documents' current versions.

    A file that cannot be ingested fails alone, its reason stored on the document. A transient
    error (database, embedding endpoint) propagates so the task retries; after
    PRODRAG_INGEST_MAX_TRIES tries the documents end in `failed` instead.

    Locks: a session advisory lock per document for the whole run (`pg_try_advisory_lock(id)`);
    a document locked by another run is skipped, so duplicate deliveries do nothing, and a
    killed worker's locks vanish with its connection so the redelivered task can proceed.
    Storing takes the documents' row locks (`SELECT ... FOR UPDATE`, in id order).
    """
    claimed = _documents_claim(document_ids)
    try:
        if claimed:
            _documents_run(claimed)
    finally:
        documents_unlock([work.document.pk for work in claimed])


def _documents_claim(document_ids: Sequence[int]) -> list[_Work]:
    ids = documents_lock_try(
        Document.objects.filter(pk__in=document_ids, status__in=ACTIVE).exclude(
            current_version=None
        )
    )
    documents = Document.objects.filter(pk__in=ids, status__in=ACTIVE).select_related(
        "collection", "current_version"
    )
    found = {document.pk for document in documents}
    documents_unlock([pk for pk in ids if pk not in found])
    work = []
    for document in documents.order_by("pk"):
        document.attempts += 1
        work.append(_Work(document=document, version=document.current_version))
    Document.objects.bulk_update([item.document for item in work], ["attempts"])
    return work


def _documents_run(claimed: list[_Work]) -> None:
    try:
        active = _stage(claimed, Document.Status.PARSING, _parse)
        active = _stage(active, Document.Status.CHUNKING, _chunk)
        status_set([item.document for item in active], Document.Status.EMBEDDING)
        started = time.monotonic()
        _embed(active)
        _seconds_share(active, "embed", time.monotonic() - started)
        active = [item for item in active if not item.error]
        _store(active)
    except TRANSIENT_ERRORS as exc:
        exhausted = [
            item.document for item in claimed if item.document.attempts >= settings.INGEST_MAX_TRIES
        ]
        if len(exhausted) < len(claimed):
            raise
        _documents_fail(exhausted, f"Gave up after {settings.INGEST_MAX_TRIES} tries: {exc}")
    finally:
        failed = [item for item in claimed if item.error]
        for item in failed:
            item.document.error = item.error
        if failed:
            _documents_fail([item.document for item in failed])


def _stage(work: list[_Work], status: str, step) -> list[_Work]:
    """Run one per-document step; a document whose step fails drops out with its reason."""
    status_set([item.document for item in work], status)
    for item in work:
        started = time.monotonic()
        try:
            step(item)
        except ParseError as exc:
            item.error = str(exc)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            log.exception("document %s: %s failed", item.document.pk, status)
            item.error = f"Internal error while {status}: {exc!r}"[:2000]
        item.seconds[_STAGE_NAMES[status]] = round(time.monotonic() - started, 3)
    return [item for item in work if not item.error]


def _seconds_share(work: list[_Work], stage: str, seconds: float) -> None:
    """Share a stage that ran for all documents together (embedding, storing) among them by
    their passages, so that each document's stage seconds are its own and add up across
    documents."""
    passages = sum(len(item.drafts) for item in work) or 1
    for item in work:
        item.seconds[stage] = round(seconds * len(item.drafts) / passages, 4)


@functools.cache
def _parser() -> ParserSandbox:
    return ParserSandbox(timeout=settings.PARSE_TIMEOUT, memory_mb=settings.PARSE_MEMORY_MB)


def _parse(item: _Work) -> None:
    limits = Limits(**settings.INGEST_LIMITS)
    version = item.version
    if version.size > limits.max_file_bytes:
        raise ParseError(
            f"The file is {version.size:,} bytes; the limit is {limits.max_file_bytes:,} "
            "(PRODRAG_MAX_FILE_BYTES)."
        )
    with version.file.open("rb") as handle:
        data = handle.read()
    name = PurePath(version.file.name).name
    fmt = format_detect(name=name, head=data[:8192])
    if fmt == "text":
        # Decoding and splitting text is linear Python on size-checked bytes: no parser to
        # crash or hang, so the sandbox round trip would only cost time.
        item.parsed = Parsed(text_document(name=name, text=text_decode(data)))
    else:
        layout_models = (
            settings.DOCLING_ARTIFACTS_PATH if settings.PDF_PIPELINE == "layout" else None
        )
        item.parsed = _parser().parse(
            data=data, name=name, fmt=fmt, limits=limits, layout_models=layout_models
        )
    item.outline = outline_build(item.parsed.document)
    if not item.outline.text.strip():
        raise ParseError(
            "No text found in the file"
            + (
                " (a scanned PDF without a text layer needs OCR, which this install does not run)"
                if fmt == "pdf"
                else ""
            )
            + "."
        )


def _chunk(item: _Work) -> None:
    collection = item.document.collection
    item.drafts = chunks_split(
        document=item.parsed.document,
        outline=item.outline,
        strategy=collection.chunking,
        max_tokens=collection.chunk_tokens,
        overlap=collection.chunk_overlap,
        embedder=embedder(),
    )


def _embedding_input(title: str, draft: ChunkDraft) -> str:
    """What the model sees: the passage with its title and headings, which often carry the
    words a question uses and the passage leaves implicit."""
    return "\n".join(part for part in (title, " > ".join(draft.heading_path), draft.text) if part)


def _embed(work: list[_Work]) -> None:
    """Embed all documents' passages together (full batches even for short documents), reusing
    the vectors of passages unchanged since the indexed version: an edit re-embeds only the
    passages it touched. A rejected input fails only the document it belongs to."""
    model = embedder()
    previous: dict[tuple[int, str, tuple[str, ...]], np.ndarray] = {}
    reindexed = [item.document.pk for item in work if item.document.indexed_version_id]
    if reindexed:
        # Only vectors that the configured model and quantisation made: `reembed` after a
        # change of setting makes them all anew.
        for document_id, text, path, vector in ChunkEmbedding.objects.filter(
            document_id__in=reindexed,
            embedding_model=model.model,
            chunk__version__embedding_quantize=model.quantize,
        ).values_list("document_id", "chunk__text", "chunk__heading_path", "embedding"):
            previous[(document_id, text, tuple(path))] = vector
    pending: list[tuple[_Work, int, str]] = []
    for item in work:
        item.vectors = np.zeros((len(item.drafts), model.dimensions), dtype=np.float32)
        for index, draft in enumerate(item.drafts):
            reused = previous.get((item.document.pk, draft.text, draft.heading_path))
            if reused is not None:
                item.vectors[index] = reused
            else:
                pending.append((item, index, _embedding_input(item.document.title, draft)))
    group = settings.EMBEDDING_BATCH_SIZE * 8
    for start in range(0, len(pending), group):
        part = pending[start : start + group]
        try:
            vectors = model.embed([text for _, _, text in part])
        except EmbeddingError:
            vectors = _embed_each(model, part)
        for (item, index, _), vector in zip(part, vectors, strict=True):
            if vector is not None:
                item.vectors[index] = vector
        done = round(100 * (start + len(part)) / len(pending))
        Document.objects.filter(pk__in=[item.document.pk for item in work]).update(progress=done)


def _embed_each(model: Embedder, part: list[tuple[_Work, int, str]]) -> list:
    """After a batch was rejected: embed text by text, failing the documents whose text the
    provider refuses."""
    vectors = []
    for item, _, text in part:
        if item.error:
            vectors.append(None)
            continue
        try:
            vectors.append(model.embed([text])[0])
        except EmbeddingError as exc:
            item.error = f"The embedding model refused a passage: {exc}"
            vectors.append(None)
    return vectors


def _store(work: list[_Work]) -> None:
    """Swap every document's passages to its new version in one transaction: search sees each
    document entirely at its old version or entirely at its new one.

    Locks: the documents' rows, in id order. A document whose current version moved on while
    it was processed (a newer upload) is left alone: the newer version's own task indexes it.
    """
    if not work:
        return
    model = embedder()
    started = time.monotonic()
    with transaction.atomic():
        current = dict(
            Document.objects.filter(pk__in=[item.document.pk for item in work])
            .order_by("pk")
            .select_for_update()
            .values_list("pk", "current_version_id")
        )
        work = [item for item in work if current.get(item.document.pk) == item.version.pk]
        ids = [item.document.pk for item in work]
        # Only the ids: the cascade to the vectors needs no more, and the texts are not read.
        Chunk.objects.filter(document_id__in=ids).only("pk").delete()
        chunks = Chunk.objects.bulk_create(
            [
                Chunk(
                    document=item.document,
                    version=item.version,
                    ordinal=ordinal,
                    text=draft.text,
                    token_count=draft.token_count,
                    heading_path=list(draft.heading_path),
                    page_start=draft.page_start,
                    page_end=draft.page_end,
                    char_start=draft.char_start,
                    char_end=draft.char_end,
                )
                for item in work
                for ordinal, draft in enumerate(item.drafts)
            ],
            batch_size=1000,
        )
        vectors = (vector for item in work for vector in item.vectors)
        ChunkEmbedding.objects.bulk_create(
            [
                ChunkEmbedding(
                    chunk=chunk,
                    document_id=chunk.document_id,
                    embedding_model=model.model,
                    embedding=vector,
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ],
            batch_size=1000,
        )
        now = timezone.now()
        for item in work:
            _version_indexed(item, model)
        DocumentVersion.objects.bulk_update(
            [item.version for item in work],
            [
                "text",
                "page_count",
                "chunking",
                "embedding_model",
                "embedding_dimensions",
                "embedding_runtime",
                "embedding_quantize",
            ],
        )
        _seconds_share(work, "store", time.monotonic() - started)
        for item in work:
            document = item.document
            document.stage_seconds = item.seconds
            transaction.on_commit(
                functools.partial(
                    _ready_report,
                    document_id=document.pk,
                    passages=len(item.drafts),
                    stage_seconds=document.stage_seconds,
                )
            )
            document.status, document.error, document.progress = Document.Status.READY, "", 100
            document.status_changed_at = document.status_changed_at | {
                Document.Status.READY: now.isoformat()
            }
            document.indexed_version = item.version
            document.updated_at = now
        Document.objects.bulk_update(
            [item.document for item in work],
            [
                "title",
                "language",
                "properties",
                "stage_seconds",
                "status",
                "error",
                "progress",
                "status_changed_at",
                "indexed_version",
                "updated_at",
            ],
        )
        chunk_search_vectors_refresh(version_ids=[item.version.pk for item in work])


def _version_indexed(item: _Work, model: Embedder) -> None:
    """Record what was read from the file on the version and, for search filters, the
    document."""
    document, version = item.document, item.version
    properties = dict(item.parsed.metadata)
    properties["source_path"] = document.source
    if item.outline.page_count and "page_count" not in properties:
        properties["page_count"] = item.outline.page_count
    properties["language"] = properties.get("language") or _language_detect(item.outline.text)
    if properties.get("title") and document.title == PurePath(document.source).name:
        document.title = properties["title"][: Document._meta.get_field("title").max_length]
    document.properties = properties
    document.language = properties["language"]
    version.text = item.outline.text
    version.page_count = properties.get("page_count")
    collection = document.collection
    version.chunking = {
        "strategy": collection.chunking,
        "max_tokens": collection.chunk_tokens,
        "overlap": collection.chunk_overlap,
        "chunks": len(item.drafts),
    }
    version.embedding_model, version.embedding_dimensions = model.model, model.dimensions
    version.embedding_runtime, version.embedding_quantize = model.runtime, model.quantize


# Below this probability of its best guess, the text is too short or too mixed to tell.
LANGUAGE_MIN_CONFIDENCE = 0.9
UNKNOWN_LANGUAGE = "unknown"


@functools.cache
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _language_detect(text: str) -> str:
    """The text's language (ISO 639-1), or "unknown" when py3langid is not sure: a short
    sample document was labelled Luxembourgish."""
    language, confidence = _language_identifier().classify(text[:5000])
    return language if confidence >= LANGUAGE_MIN_CONFIDENCE else UNKNOWN_LANGUAGE


def _ready_report(*, document_id: int, passages: int, stage_seconds: dict[str, float]) -> None:
    for stage, seconds in stage_seconds.items():
        metrics.INGEST_STAGE_SECONDS.labels(stage=stage).observe(seconds)
    log.info("document %s ready: %d passages, seconds %s", document_id, passages, stage_seconds)


def _documents_fail(documents: list[Document], error: str | None = None) -> None:
    """End documents in `failed`: with `error`, or each with the error already set on it."""
    for document in documents:
        if error is not None:
            document.error = error
        document.progress = 0
        log.warning("document %s failed: %s", document.pk, document.error)
        failed = metrics.INGEST_FAILURES.labels(stage=document.status)
        transaction.on_commit(failed.inc)
    status_set(documents, Document.Status.FAILED, also=["error", "progress"])
