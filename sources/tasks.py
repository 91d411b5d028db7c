from celery import shared_task
from django.db.models import Max
from django.utils import timezone

from sources.models import Source
from sources.services import source_permissions_sync, source_sync


@shared_task
def source_sync_run(source_id: int, allow_deletions: bool = False) -> str:
    """Sync one source; quietly nothing when it is gone or another sync of it runs."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return "gone"
    run = source_sync(source=source, allow_deletions=allow_deletions)
    return run.outcome if run is not None else "already running"


@shared_task
def source_permissions_run(source_id: int) -> str:
    """The permission pass of one mirror source; quietly nothing when it is gone, another pass
    of it runs or it cannot be reached (source_permissions_sync logs why)."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return "gone"
    changed = source_permissions_sync(source=source)
    return "not run" if changed is None else f"{changed} changed"


@shared_task
def sources_sync_due() -> int:
    """Queue a sync of each source whose interval has passed since its last run started, and
    a permission pass of each mirror source whose permission interval has passed since its
    last pass. Returns how many of both."""
    now = timezone.now()
    sources = list(Source.objects.annotate(last=Max("runs__started_at")))
    syncs = [
        source.pk
        for source in sources
        if (due := source.next_sync_at(source.last)) is not None and due <= now
    ]
    passes = [
        source.pk
        for source in sources
        if (due := source.next_permission_pass_at()) is not None and due <= now
    ]
    for pk in syncs:
        source_sync_run.delay(pk)
    for pk in passes:
        source_permissions_run.delay(pk)
    return len(syncs) + len(passes)
