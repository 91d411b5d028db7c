from celery import shared_task
from django.conf import settings

from documents.errors import TRANSIENT_ERRORS


@shared_task(
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    # documents_ingest counts tries per document and gives up itself; this only keeps Celery
    # from giving up first.
    max_retries=settings.INGEST_MAX_TRIES,
)
def documents_process(document_ids: list[int]) -> None:
    from documents.services.ingestion import documents_ingest

    documents_ingest(document_ids=document_ids)


@shared_task
def documents_requeue() -> int:
    from documents.services.queue import documents_requeue_stalled

    return documents_requeue_stalled(
        older_than=settings.INGEST_STALL_SECONDS, orphaned_after=settings.INGEST_ORPHAN_SECONDS
    )
