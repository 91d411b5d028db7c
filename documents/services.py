from __future__ import annotations

import functools
import hashlib
import json
import logging
import mimetypes
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePath

import filetype
import numpy as np
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.search import SearchVector
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    models,
    transaction,
)
from django.db.models import BooleanField, F, Func, Max, OuterRef, Subquery, TextField, Value
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import AuditEvent, User
from accounts.selectors import ALL_STAFF, group_principal, user_principal
from accounts.services import audit_record
from documents.chunking import ChunkDraft, Outline, chunks_split, outline_build
from documents.embedding import Embedder, EmbeddingError, EmbeddingUnavailable, embedder
from documents.models import (
    Chunk,
    ChunkEmbedding,
    Collection,
    CollectionGroupObjectPermission,
    CollectionUserObjectPermission,
    Document,
    DocumentGroupObjectPermission,
    DocumentUserObjectPermission,
    DocumentVersion,
    embedding_index,
)
from documents.parsing import (
    SUPPORTED_SUFFIXES,
    Limits,
    Parsed,
    ParseError,
    format_detect,
    looks_like_text,
    text_decode,
    text_document,
)
from documents.sandbox import ParserSandbox
from prodrag import metrics

_GRANT_MODELS = {
    Collection: (CollectionUserObjectPermission, CollectionGroupObjectPermission),
    Document: (DocumentUserObjectPermission, DocumentGroupObjectPermission),
}


def read_acl_refresh(*, model: type[Collection] | type[Document], ids: Iterable[int]) -> None:
    """Rewrite the ACL arrays of these collections or documents from their owner, their
    open-to-staff flag and their grants (documents.authority): `read_principals` from
    `view_document` grants and, for a collection, `manage_principals` from its owner and
    `manage_collection` grants, which read too.

    Locks: the rows, `SELECT ... FOR UPDATE` in primary-key order (so overlapping refreshes
    cannot deadlock), taken *before* the grants are read: of two transactions granting on the
    same document at once, the second waits, then reads both grants.
    """
    ids = sorted(set(ids))
    if not ids:
        return
    user_grants, group_grants = _GRANT_MODELS[model]
    with transaction.atomic():
        rows = (
            model.objects.filter(pk__in=ids)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", "owner_id", "open_to_staff")
        )
        read = {
            pk: {user_principal(owner_id), *([ALL_STAFF] if open_to_staff else [])}
            for pk, owner_id, open_to_staff in rows
        }
        if not read:
            return
        manage = {pk: {user_principal(owner_id)} for pk, owner_id, _ in rows}
        codenames = ["manage_collection"] if model is Collection else []
        permissions = dict(
            Permission.objects.filter(
                content_type=ContentType.objects.get_for_model(model),
                codename__in=["view_document", *codenames],
            ).values_list("pk", "codename")
        )
        granted = [
            (object_id, user_principal(user_id), permission_id)
            for object_id, user_id, permission_id in user_grants.objects.filter(
                content_object_id__in=read, permission__in=permissions
            ).values_list("content_object_id", "user_id", "permission_id")
        ] + [
            (object_id, group_principal(group_id), permission_id)
            for object_id, group_id, permission_id in group_grants.objects.filter(
                content_object_id__in=read, permission__in=permissions
            ).values_list("content_object_id", "group_id", "permission_id")
        ]
        for object_id, principal, permission_id in granted:
            read[object_id].add(principal)
            if permissions[permission_id] == "manage_collection":
                manage[object_id].add(principal)
        rows = [model(pk=pk, read_principals=sorted(principals)) for pk, principals in read.items()]
        fields = ["read_principals"]
        if model is Collection:
            for row in rows:
                row.manage_principals = sorted(manage[row.pk])
            fields.append("manage_principals")
        model.objects.bulk_update(rows, fields)


def _content_digest(upload: File) -> tuple[str, int, bytes]:
    """sha256, size and the first bytes (for type detection) of an upload, read once."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    upload.seek(0)
    for block in upload.chunks():
        if not head:
            head = block[:8192]
        digest.update(block)
        size += len(block)
    upload.seek(0)
    return digest.hexdigest(), size, head


def content_type_detect(*, name: str, head: bytes) -> str:
    """From the magic bytes where the format has them, else from the file name (also when the
    content reads as text: some magic numbers are just two letters)."""
    by_name = mimetypes.guess_type(name)[0]
    magic = filetype.guess_mime(head)
    if magic and not (by_name and by_name.startswith("text/") and looks_like_text(head)):
        return magic
    return by_name or "application/octet-stream"


class DocumentConflict(Exception):
    """An upload clashes with another document of the collection (its external id)."""


class UploadOutcome(models.TextChoices):
    CREATED = "created"
    UNCHANGED = "unchanged"
    NEW_VERSION = "new_version"


def document_create(
    *,
    collection: Collection,
    owner: User,
    upload: File,
    title: str = "",
    source: str = "",
    metadata: dict | None = None,
    open_to_staff: bool = False,
    external_id: str = "",
    enqueue: bool = True,
) -> tuple[Document, UploadOutcome]:
    """Store an upload in a collection. Identical bytes already there return that document
    (UNCHANGED); new bytes from a source already there become its next version (NEW_VERSION);
    anything else is a new pending document with version 1 (CREATED), unless its external id
    is another document's (DocumentConflict). The unique constraints on (collection, sha256),
    (collection, source) and (collection, external_id) decide, not a pre-check. The caller
    checks that the owner may upload into the collection (documents.authority: they manage
    it), so these outcomes never meet a document they may not read. New bytes are
    queued for processing after commit, unless `enqueue` is false (bulk loaders queue their
    documents in batches themselves).

    Locks: a savepoint around the insert absorbs a conflict; a new version locks the document
    row (see document_version_add).
    """
    name = PurePath(upload.name or "upload").name
    source = source or name
    sha256, size, head = _content_digest(upload)
    content_type = content_type_detect(name=name, head=head)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                collection=collection,
                owner=owner,
                title=title or name,
                source=source,
                external_id=external_id,
                content_type=content_type,
                sha256=sha256,
                size=size,
                metadata=metadata or {},
                open_to_staff=open_to_staff,
                status_changed_at={Document.Status.PENDING: timezone.now().isoformat()},
            )
            _version_store(
                document=document,
                number=1,
                upload=upload,
                name=name,
                digest=(sha256, size, content_type),
                by=owner,
            )
    except IntegrityError:
        existing = Document.objects.filter(collection=collection, sha256=sha256).first()
        if existing is not None:
            return existing, UploadOutcome.UNCHANGED
        document = Document.objects.filter(collection=collection, source=source).first()
        if document is None:
            raise DocumentConflict(
                f"Another document in this collection has the external id {external_id!r}."
            ) from None
        _version_add(
            document=document,
            upload=upload,
            name=name,
            digest=(sha256, size, content_type),
            by=owner,
            enqueue=enqueue,
        )
        document.refresh_from_db()
        return document, UploadOutcome.NEW_VERSION
    if enqueue:
        documents_enqueue(document_ids=[document.pk])
    return document, UploadOutcome.CREATED


def document_version_add(
    *, document: Document, upload: File, by: User, enqueue: bool = True
) -> DocumentVersion:
    """Make an upload the document's current version; it becomes pending again (and is queued
    for processing unless `enqueue` is false), and its older versions stay listed. Search keeps
    seeing the previous version until the new one is fully indexed.

    Locks: the document row (`SELECT ... FOR UPDATE`), so concurrent uploads get distinct
    version numbers.
    """
    name = PurePath(upload.name or "upload").name
    sha256, size, head = _content_digest(upload)
    digest = (sha256, size, content_type_detect(name=name, head=head))
    return _version_add(
        document=document, upload=upload, name=name, digest=digest, by=by, enqueue=enqueue
    )


def _version_add(
    *,
    document: Document,
    upload: File,
    name: str,
    digest: tuple[str, int, str],
    by: User,
    enqueue: bool,
) -> DocumentVersion:
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=document.pk)
        number = (document.versions.aggregate(last=Max("number"))["last"] or 0) + 1
        version = _version_store(
            document=document, number=number, upload=upload, name=name, digest=digest, by=by
        )
        if enqueue:
            documents_enqueue(document_ids=[document.pk])
        return version


def _version_store(
    *,
    document: Document,
    number: int,
    upload: File,
    name: str,
    digest: tuple[str, int, str],
    by: User,
) -> DocumentVersion:
    """Save the bytes as version `number` and make it current; `digest` is (sha256, size,
    content type) of the upload, computed once by the caller."""
    sha256, size, content_type = digest
    version = DocumentVersion(
        document=document,
        number=number,
        sha256=sha256,
        size=size,
        content_type=content_type,
        created_by=by,
    )
    version.file.save(name, upload, save=False)
    version.save()
    document.current_version = version
    document.sha256, document.size, document.content_type = sha256, size, content_type
    document.status, document.error = Document.Status.PENDING, ""
    document.attempts, document.progress = 0, 0
    document.status_changed_at = document.status_changed_at | {
        Document.Status.PENDING: timezone.now().isoformat()
    }
    document.save(
        update_fields=[
            "current_version",
            "sha256",
            "size",
            "content_type",
            "status",
            "error",
            "attempts",
            "progress",
            "status_changed_at",
            "updated_at",
        ]
    )
    return version


def document_update(*, document: Document, title: str | None = None, metadata=None) -> Document:
    """Change a document's title or user metadata. The title is part of every passage's
    full-text vector, so a new title refreshes them (the vectors' embeddings keep the old
    title until the document is processed again).

    Locks: the document row, for the update."""
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=document.pk)
        fields = []
        if title is not None and title != document.title:
            document.title = title
            fields.append("title")
        if metadata is not None:
            document.metadata = metadata
            fields.append("metadata")
        if fields:
            document.save(update_fields=[*fields, "updated_at"])
        if "title" in fields and document.indexed_version_id:
            chunk_search_vectors_refresh(version_ids=[document.indexed_version_id])
    return document


def document_delete(*, document: Document) -> None:
    """Delete a document with its versions and passages (search stops seeing it at commit),
    then its stored files.

    Locks: the document row and, by cascade, its versions' and chunks' rows."""
    files = [version.file.name for version in document.versions.all() if version.file]
    storage = DocumentVersion._meta.get_field("file").storage
    with transaction.atomic():
        document.delete()
        transaction.on_commit(lambda: [storage.delete(name) for name in files])


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


# --- ingestion ----------------------------------------------------------------------------------

# Worth another try later: the database or the embedding endpoint was unreachable.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, EmbeddingUnavailable)
_ACTIVE = [
    Document.Status.PENDING,
    Document.Status.PARSING,
    Document.Status.CHUNKING,
    Document.Status.EMBEDDING,
]
_STAGE_NAMES = {Document.Status.PARSING: "parse", Document.Status.CHUNKING: "chunk"}
log = logging.getLogger("prodrag.ingest")


def documents_enqueue(*, document_ids: Sequence[int]) -> None:
    """Queue processing after the current transaction commits (a worker must find the rows),
    in tasks of PRODRAG_INGEST_BATCH_SIZE documents whose chunks are embedded together."""
    from documents.tasks import documents_process

    ids = list(document_ids)
    size = settings.INGEST_BATCH_SIZE
    for start in range(0, len(ids), size):
        batch = ids[start : start + size]
        transaction.on_commit(functools.partial(documents_process.delay, batch))


def documents_reprocess(*, documents: models.QuerySet[Document]) -> int:
    """Put documents back to pending with a fresh try budget and queue them: the admin's and
    the CLI's retry of failed documents, and a collection rebuild. Returns how many."""
    with transaction.atomic():
        documents = list(documents.exclude(current_version=None))
        for document in documents:
            document.error, document.attempts = "", 0
        _status_set(documents, Document.Status.PENDING, also=["error", "attempts"])
        for document in documents:
            audit_record(action=AuditEvent.Action.DOCUMENT_REPROCESS, target=document)
        documents_enqueue(document_ids=[document.pk for document in documents])
    return len(documents)


def documents_requeue_stalled(*, older_than: float) -> int:
    """Queue again documents still unfinished whose row has not moved for `older_than`
    seconds: their task was lost (a broker without redelivery, a worker killed outright). A
    document still being worked on is skipped by its new task, so this is safe to overdo."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    ids = list(
        Document.objects.filter(status__in=_ACTIVE, updated_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    documents_enqueue(document_ids=ids)
    return len(ids)


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
        _documents_release([work.document.pk for work in claimed])


def _documents_claim(document_ids: Sequence[int]) -> list[_Work]:
    locked = (
        Document.objects.filter(pk__in=document_ids, status__in=_ACTIVE)
        .exclude(current_version=None)
        .order_by("pk")
        .annotate(
            claimed=Func(F("pk"), function="pg_try_advisory_lock", output_field=BooleanField())
        )
        .values_list("pk", "claimed")
    )
    ids = [pk for pk, claimed in locked if claimed]
    documents = Document.objects.filter(pk__in=ids, status__in=_ACTIVE).select_related(
        "collection", "current_version"
    )
    found = {document.pk for document in documents}
    _documents_release([pk for pk in ids if pk not in found])
    work = []
    for document in documents.order_by("pk"):
        document.attempts += 1
        work.append(_Work(document=document, version=document.current_version))
    Document.objects.bulk_update([item.document for item in work], ["attempts"])
    return work


def _documents_release(ids: Sequence[int]) -> None:
    if ids:
        list(
            Document.objects.filter(pk__in=ids)
            .annotate(
                released=Func(F("pk"), function="pg_advisory_unlock", output_field=BooleanField())
            )
            .values_list("released", flat=True)
        )


def _documents_run(claimed: list[_Work]) -> None:
    try:
        active = _stage(claimed, Document.Status.PARSING, _parse)
        active = _stage(active, Document.Status.CHUNKING, _chunk)
        _status_set([item.document for item in active], Document.Status.EMBEDDING)
        started = time.monotonic()
        _embed(active)
        for item in active:
            item.seconds["embed"] = round(time.monotonic() - started, 3)
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
    _status_set([item.document for item in work], status)
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
        for document_id, text, path, vector in ChunkEmbedding.objects.filter(
            document_id__in=reindexed, embedding_model=model.model
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
            ["text", "page_count", "chunking", "embedding_model", "embedding_dimensions"],
        )
        store_seconds = round(time.monotonic() - started, 3)
        for item in work:
            document = item.document
            document.stage_seconds = item.seconds | {"store": store_seconds}
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


def _language_detect(text: str) -> str:
    import py3langid

    language, _ = py3langid.classify(text[:5000])
    return language


def _status_set(documents: list[Document], status: str, *, also: Sequence[str] = ()) -> None:
    """Move documents to `status`, stamping when, in one query; `also` names fields the
    caller changed on them, written in the same query."""
    now = timezone.now()
    for document in documents:
        document.status = status
        document.status_changed_at = document.status_changed_at | {status: now.isoformat()}
        document.updated_at = now
    Document.objects.bulk_update(documents, ["status", "status_changed_at", "updated_at", *also])


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
    _status_set(documents, Document.Status.FAILED, also=["error", "progress"])


# --- bulk loading -------------------------------------------------------------------------------


def collection_for_loading(
    *, name: str, owner_username: str | None, grant_group: str | None, open_to_staff: bool
) -> tuple[Collection, bool]:
    """The collection a bulk load goes to, created if new (owned by `owner_username`, or the
    first superuser), with `view_document` granted to `grant_group` and opened to all staff
    when asked. Returns the collection and whether it was created. Raises ValueError naming
    what is missing."""
    owner = None
    if owner_username:
        owner = User.objects.filter(username=owner_username).first()
        if owner is None:
            raise ValueError(f"No user named {owner_username!r}.")
    group = None
    if grant_group:
        group = Group.objects.filter(name=grant_group).first()
        if group is None:
            raise ValueError(f"No group named {grant_group!r}; create it in the admin first.")
    with transaction.atomic():
        collection = Collection.objects.filter(name=name).first()
        created = collection is None
        if created:
            owner = owner or User.objects.filter(is_superuser=True).order_by("pk").first()
            if owner is None:
                raise ValueError("No owner for the new collection: pass --owner USERNAME.")
            collection = Collection.objects.create(
                name=name, owner=owner, open_to_staff=open_to_staff
            )
        elif open_to_staff and not collection.open_to_staff:
            collection.open_to_staff = True
            collection.save(update_fields=["open_to_staff", "updated_at"])
        if group is not None:
            assign_perm("documents.view_document", group, collection)
    return collection, created


@dataclass
class LoadReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    document_ids: list[int] = field(default_factory=list)
    queue: bool = False
    queued: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def added(self, document_id: int) -> None:
        """A document to process. With `queue`, every full task's worth is queued at once, so
        the worker starts while the rest is still uploading."""
        self.document_ids.append(document_id)
        if self.queue and len(self.document_ids) - self.queued >= settings.INGEST_BATCH_SIZE:
            self.queue_rest()

    def queue_rest(self) -> None:
        documents_enqueue(document_ids=self.document_ids[self.queued :])
        self.queued = len(self.document_ids)


def files_collect(*, paths: Sequence[Path], recursive: bool) -> tuple[list[Path], list]:
    """The files to load: every file named, and in directories (with `recursive`, their
    subdirectories too) those of a supported type; hidden entries are passed over. Returns the
    files and the (path, reason) pairs left out, so nothing is dropped silently."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            entries = sorted(path.rglob("*") if recursive else path.iterdir())
            for entry in entries:
                relative = entry.relative_to(path)
                if any(part.startswith(".") for part in relative.parts) or not entry.is_file():
                    continue
                if entry.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(entry)
                else:
                    skipped.append((str(entry), f"unsupported type {entry.suffix or '(none)'}"))
        else:
            skipped.append((str(path), "no such file or directory"))
    return files, skipped


def files_load(
    *,
    collection: Collection,
    owner: User,
    files: Iterable[Path],
    metadata: dict | None = None,
    report: LoadReport,
) -> None:
    """Upload files into a collection (each as document_create does). With `report.queue` the
    new documents are queued as they load (the caller queues the last ones with
    `report.queue_rest()`); without, the caller processes `report.document_ids` itself."""
    for path in files:
        try:
            with path.open("rb") as handle:
                document, outcome = document_create(
                    collection=collection,
                    owner=owner,
                    upload=File(handle, name=path.name),
                    source=str(path.resolve()),
                    metadata=metadata,
                    enqueue=False,
                )
        except OSError as exc:
            report.failed.append((str(path), f"cannot read: {exc.strerror or exc}"))
            continue
        report.count(outcome)
        if outcome != UploadOutcome.UNCHANGED:
            report.added(document.pk)
        elif document.status == Document.Status.FAILED:
            report.failed.append(
                (
                    str(path),
                    f"unchanged since it failed: {document.error} (retry with "
                    "`manage.py rebuild --collection NAME --failed` after fixing the cause)",
                )
            )


def beir_corpus_load(
    *, collection: Collection, owner: User, corpus: Path, report: LoadReport
) -> None:
    """Load a BEIR `corpus.jsonl` (`_id`, `title`, `text` per line) as one plain-text document
    per row, `_id` kept as the external id, queued as files_load does. A malformed line is
    reported with its line number and skipped; the rest load."""
    with corpus.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc_id, text = str(row["_id"]), str(row["text"])
                title = str(row.get("title") or doc_id)
            except (ValueError, KeyError, TypeError) as exc:
                report.failed.append((f"{corpus}:{number}", f"not a BEIR corpus row: {exc}"))
                continue
            document, outcome = document_create(
                collection=collection,
                owner=owner,
                upload=ContentFile(text.encode(), name=f"{doc_id}.txt"),
                title=title[: Document._meta.get_field("title").max_length],
                source=f"beir:{doc_id}",
                external_id=doc_id,
                enqueue=False,
            )
            report.count(outcome)
            if outcome != UploadOutcome.UNCHANGED:
                report.added(document.pk)


def load_failures(*, document_ids: Sequence[int]) -> list[tuple[str, str]]:
    """(source, error) of the documents of a load that ended in `failed`."""
    return list(
        Document.objects.filter(pk__in=document_ids, status=Document.Status.FAILED).values_list(
            "source", "error"
        )
    )
