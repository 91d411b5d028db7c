from datetime import timedelta

from celery import shared_task
from django.db.models import Max
from django.utils import timezone

from sources.models import Source
from sources.services import source_sync


@shared_task
def source_sync_run(source_id: int) -> str:
    """Sync one source; quietly nothing when it is gone or another sync of it runs."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return "gone"
    run = source_sync(source=source)
    return run.outcome if run is not None else "already running"


@shared_task
def sources_sync_due() -> int:
    """Queue a sync of each source whose interval has passed since its last run started.
    Returns how many."""
    now = timezone.now()
    due = [
        source.pk
        for source in Source.objects.filter(sync_minutes__gt=0).annotate(
            last=Max("runs__started_at")
        )
        if source.last is None or now - source.last >= timedelta(minutes=source.sync_minutes)
    ]
    for pk in due:
        source_sync_run.delay(pk)
    return len(due)
