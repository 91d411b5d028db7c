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
from django.db import IntegrityError, transaction
from django.db.models import F, Func, TextField, Value
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


def document_create(
    *,
    collection: Collection,
    owner: User,
    upload: File,
    title: str = "",
    source: str = "",
    metadata: dict | None = None,
    open_to_staff: bool = False,
) -> tuple[Document, bool]:
    """Store an upload as a new pending document with its first version; returns
    (document, created). Identical bytes already in the collection return that document:
    the (collection, sha256) unique constraint decides, not a pre-check.

    Locks: none beyond the inserted rows (a savepoint around the insert absorbs the conflict).
    """
    name = PurePath(upload.name or "upload").name
    sha256, size, head = _content_digest(upload)
    content_type = content_type_detect(name=name, head=head)
    now = timezone.now()
    try:
        with transaction.atomic():
            document = Document.objects.create(
                collection=collection,
                owner=owner,
                title=title or name,
                source=source or name,
                content_type=content_type,
                sha256=sha256,
                size=size,
                metadata=metadata or {},
                open_to_staff=open_to_staff,
                status_changed_at={Document.Status.PENDING: now.isoformat()},
            )
            version = DocumentVersion(
                document=document,
                number=1,
                sha256=sha256,
                size=size,
                content_type=content_type,
                created_by=owner,
            )
            version.file.save(name, upload, save=False)
            version.save()
            document.current_version = version
            document.save(update_fields=["current_version", "updated_at"])
    except IntegrityError:
        existing = Document.objects.filter(collection=collection, sha256=sha256).first()
        if existing is None:
            raise  # a different constraint (the same source name with other bytes)
        return existing, False
    return document, True


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
