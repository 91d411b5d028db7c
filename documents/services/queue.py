"""Queueing documents for the worker: new uploads, retries, and tasks lost on the way."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import BooleanField, F, Func
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import audit_record
from documents.models import Document
from documents.tasks import documents_process

# The statuses of a document still to be processed, or being processed.
ACTIVE = [
    Document.Status.PENDING,
    Document.Status.PARSING,
    Document.Status.CHUNKING,
    Document.Status.EMBEDDING,
]


def documents_enqueue(*, document_ids: Sequence[int], queue: str | None = None) -> None:
    """Queue processing after the current transaction commits (a worker must find the rows),
    in tasks of PRODRAG_INGEST_BATCH_SIZE documents whose chunks are embedded together, on
    `queue` (default: the ingestion queue)."""
    ids = list(document_ids)
    size = settings.INGEST_BATCH_SIZE
    for start in range(0, len(ids), size):
        batch = ids[start : start + size]
        transaction.on_commit(
            functools.partial(
                documents_process.apply_async, (batch,), queue=queue or settings.INGESTION_QUEUE
            )
        )


def documents_reprocess(*, documents: models.QuerySet[Document], queue: str | None = None) -> int:
    """Put documents back to pending with a fresh try budget and queue them (on `queue`,
    default the ingestion queue): the admin's and the CLI's retry of failed documents, a
    collection rebuild and re-embedding. Returns how many."""
    with transaction.atomic():
        documents = list(documents.exclude(current_version=None))
        for document in documents:
            document.error, document.attempts = "", 0
        status_set(documents, Document.Status.PENDING, also=["error", "attempts"])
        for document in documents:
            audit_record(action=AuditEvent.Action.DOCUMENT_REPROCESS, target=document)
        documents_enqueue(document_ids=[document.pk for document in documents], queue=queue)
    return len(documents)


def documents_requeue_stalled(*, older_than: float, orphaned_after: float) -> int:
    """Queue again documents whose task was lost (a broker without redelivery, a worker killed
    outright):
    - a document being worked on (parsing, chunking, embedding) whose row has not moved for
      `orphaned_after` seconds and whose advisory lock no session holds: its worker is gone.
      It goes back to pending, so that later sweeps leave it to its new task (queued behind
      a long import, it may wait longer than `orphaned_after`);
    - any unfinished document whose row has not moved for `older_than` seconds.
    A document still being worked on is skipped by its new task, so this is safe to overdo.

    Locks: each orphan candidate's advisory lock, taken to see that no session holds it and
    held while it goes back to pending (no worker can claim it meanwhile)."""
    now = timezone.now()
    stalled = set(
        Document.objects.filter(
            status__in=ACTIVE, updated_at__lt=now - timedelta(seconds=older_than)
        ).values_list("pk", flat=True)
    )
    candidates = Document.objects.filter(
        status__in=WORKED_ON, updated_at__lt=now - timedelta(seconds=orphaned_after)
    ).exclude(pk__in=stalled)
    orphans = documents_lock_try(candidates)
    try:
        status_set(list(Document.objects.filter(pk__in=orphans)), Document.Status.PENDING)
    finally:
        documents_unlock(orphans)
    ids = sorted(stalled | set(orphans))
    documents_enqueue(document_ids=ids)
    return len(ids)


# The statuses a worker sets while it holds the document's advisory lock.
WORKED_ON = [Document.Status.PARSING, Document.Status.CHUNKING, Document.Status.EMBEDDING]


def documents_lock_try(documents: models.QuerySet[Document]) -> list[int]:
    """Take the session advisory lock of each of these documents that no session holds, in id
    order; returns their ids. Held until documents_unlock or the end of the connection."""
    probed = (
        documents.order_by("pk")
        .annotate(taken=Func(F("pk"), function="pg_try_advisory_lock", output_field=BooleanField()))
        .values_list("pk", "taken")
    )
    return [pk for pk, taken in probed if taken]


def documents_unlock(ids: Sequence[int]) -> None:
    """Release the session advisory locks documents_lock_try took on these documents."""
    if ids:
        list(
            Document.objects.filter(pk__in=ids)
            .annotate(
                released=Func(F("pk"), function="pg_advisory_unlock", output_field=BooleanField())
            )
            .values_list("released", flat=True)
        )


def status_set(documents: list[Document], status: str, *, also: Sequence[str] = ()) -> None:
    """Move documents to `status`, stamping when, in one query; `also` names fields the
    caller changed on them, written in the same query."""
    now = timezone.now()
    for document in documents:
        document.status = status
        document.status_changed_at = document.status_changed_at | {status: now.isoformat()}
        document.updated_at = now
    Document.objects.bulk_update(documents, ["status", "status_changed_at", "updated_at", *also])
