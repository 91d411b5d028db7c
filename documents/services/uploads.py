"""Uploads and versions: storing a file as a new document or as a document's next version,
changing and deleting documents."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import PurePath

import filetype
from django.core.files import File
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import User
from documents.models import Collection, Document, DocumentVersion
from documents.parsing import looks_like_text
from documents.services.index import chunk_search_vectors_refresh
from documents.services.queue import documents_enqueue


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
    origin: str = "",
) -> tuple[Document, UploadOutcome]:
    """Store an upload in a collection. Identical bytes already there return that document
    (UNCHANGED); new bytes from a source already there become its next version (NEW_VERSION);
    anything else is a new pending document with version 1 (CREATED), unless its external id
    is another document's (DocumentConflict). The unique constraints on (collection, sha256),
    (collection, source) and (collection, external_id) decide, not a pre-check. The caller
    checks that the owner may upload into the collection (documents.authority: they manage
    it), so these outcomes never meet a document they may not read. New bytes are
    queued for processing after commit, unless `enqueue` is false (bulk loaders queue their
    documents in batches themselves). `origin` says where a source had the bytes (a commit, an
    ETag), kept on the version it makes.

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
                origin=origin,
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
            origin=origin,
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
    origin: str = "",
) -> DocumentVersion:
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=document.pk)
        number = (document.versions.aggregate(last=Max("number"))["last"] or 0) + 1
        version = _version_store(
            document=document, number=number, upload=upload, name=name, digest=digest, by=by,
            origin=origin,
        )  # fmt: skip
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
    origin: str = "",
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
        origin=origin,
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
