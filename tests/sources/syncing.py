"""The source tests' sync: a sync, then the ingestion of what it queued, as the worker would."""

from documents.models import Document
from documents.services.ingestion import documents_ingest
from sources.models import SourceRun
from sources.services import source_sync


def synced(source, **options) -> SourceRun:
    run = source_sync(source=source, **options)
    pending = Document.objects.filter(collection=source.collection, status="pending")
    documents_ingest(document_ids=list(pending.values_list("pk", flat=True)))
    return run


def counts(run: SourceRun) -> tuple:
    return (run.seen, run.added, run.changed, run.unchanged, run.deleted, run.failed)
