from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from pathlib import PurePath

import filetype
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.search import SearchVector
from django.core.files import File
from django.db import IntegrityError, models, transaction
from django.db.models import F, Func, Max, TextField, Value
from django.utils import timezone

from accounts.models import User
from accounts.selectors import ALL_STAFF, group_principal, user_principal
from documents.models import (
    Chunk,
    Collection,
    CollectionGroupObjectPermission,
    CollectionUserObjectPermission,
    Document,
    DocumentGroupObjectPermission,
    DocumentUserObjectPermission,
    DocumentVersion,
)

_GRANT_MODELS = {
    Collection: (CollectionUserObjectPermission, CollectionGroupObjectPermission),
    Document: (DocumentUserObjectPermission, DocumentGroupObjectPermission),
}


def read_acl_refresh(*, model: type[Collection] | type[Document], ids: Iterable[int]) -> None:
    """Rewrite `read_principals` of these collections or documents from their owner, their
    open-to-staff flag and their `view_document` grants.

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
        acl = {
            pk: {user_principal(owner_id), *([ALL_STAFF] if open_to_staff else [])}
            for pk, owner_id, open_to_staff in rows
        }
        if not acl:
            return
        permission = Permission.objects.get(
            content_type=ContentType.objects.get_for_model(model), codename="view_document"
        )
        granted = user_grants.objects.filter(content_object_id__in=acl, permission=permission)
        for object_id, user_id in granted.values_list("content_object_id", "user_id"):
            acl[object_id].add(user_principal(user_id))
        granted = group_grants.objects.filter(content_object_id__in=acl, permission=permission)
        for object_id, group_id in granted.values_list("content_object_id", "group_id"):
            acl[object_id].add(group_principal(group_id))
        model.objects.bulk_update(
            [model(pk=pk, read_principals=sorted(principals)) for pk, principals in acl.items()],
            ["read_principals"],
        )


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
    """From the magic bytes where the format has them, else from the file name."""
    return filetype.guess_mime(head) or mimetypes.guess_type(name)[0] or "application/octet-stream"


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
) -> tuple[Document, UploadOutcome]:
    """Store an upload in a collection. Identical bytes already there return that document
    (UNCHANGED); new bytes from a source already there become its next version (NEW_VERSION);
    anything else is a new pending document with version 1 (CREATED). The unique constraints
    on (collection, sha256) and (collection, source) decide, not a pre-check.

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
        document = Document.objects.get(collection=collection, source=source)
        document_version_add(document=document, upload=upload, by=owner)
        document.refresh_from_db()
        return document, UploadOutcome.NEW_VERSION
    return document, UploadOutcome.CREATED


def document_version_add(*, document: Document, upload: File, by: User) -> DocumentVersion:
    """Make an upload the document's current version; it becomes pending again, and its older
    versions stay listed.

    Locks: the document row (`SELECT ... FOR UPDATE`), so concurrent uploads get distinct
    version numbers.
    """
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=document.pk)
        number = (document.versions.aggregate(last=Max("number"))["last"] or 0) + 1
        name = PurePath(upload.name or "upload").name
        sha256, size, head = _content_digest(upload)
        content_type = content_type_detect(name=name, head=head)
        return _version_store(
            document=document,
            number=number,
            upload=upload,
            name=name,
            digest=(sha256, size, content_type),
            by=by,
        )


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
            "status_changed_at",
            "updated_at",
        ]
    )
    return version


def chunk_search_vectors_refresh(*, version: DocumentVersion) -> int:
    """Compute the stored full-text vectors of a version's chunks: the document title weighs
    most (A), then the heading path (B), then the passage text (D). Returns rows updated."""
    config = settings.FTS_CONFIG
    headings = Func(
        F("heading_path"), Value(" "), function="array_to_string", output_field=TextField()
    )
    return Chunk.objects.filter(version=version).update(
        search_vector=SearchVector(Value(version.document.title), weight="A", config=config)
        + SearchVector(headings, weight="B", config=config)
        + SearchVector("text", weight="D", config=config)
    )
