"""Syncing a source: make the collection's documents from it what the source holds now.

A sync lists the source (sources.connectors), fetches only the items whose marker changed
since the last sync, and hands each to documents.services.uploads.document_create: a new item
becomes a document, an edited one the document's next version, and bytes already in the
collection (a moved or copied file) the document that holds them, parsed and embedded once.
Items gone from the source are deleted from the index, unless more would go than the source's
`max_deletion_share` allows (the run is then held and says so). Each item is committed with
its marker, so a sync killed at any point resumes where it stopped: no item is indexed twice,
none is lost. One sync per source runs at a time (an advisory lock its database session
holds, which dies with a killed worker)."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import BooleanField, F, Func, IntegerField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from core import metrics
from documents.services.uploads import (
    DocumentConflict,
    UploadOutcome,
    document_create,
    document_delete,
)
from sources.connectors import (
    Connector,
    ItemUnreadable,
    Listed,
    SourceUnavailable,
    wanted,
)
from sources.connectors.folder import FolderConnector
from sources.connectors.git import GitConnector
from sources.models import Source, SourceItem, SourceRun

logger = logging.getLogger("prodrag.sources")

_LOCK_SPACE = 0x736F7572  # "sour": sources' advisory locks, apart from the documents' keys
_PROGRESS_EVERY = 50
_COUNTED = ("seen", "added", "changed", "unchanged", "deleted", "failed", "errors")


def connector_for(source: Source) -> Connector:
    if source.kind == Source.Kind.GIT:
        mirror = settings.SOURCES_DIR / f"{source.pk}.git"
        return GitConnector(source.location, source.branch, mirror)
    return FolderConnector(source.location)


_REMOTE = ("git://", "http://", "https://", "ssh://")


def source_location_check(*, kind: str, location: str) -> str:
    """The location as the admin may store it, or ValueError saying why not: a folder (or a
    repository given as a path) must lie under PRODRAG_SOURCE_FOLDERS, so that managing a
    collection never means reading the server's own files."""
    location = location.strip()
    if kind == Source.Kind.GIT and location.startswith(_REMOTE):
        return location
    if not location.startswith("/"):
        raise ValueError("Give an absolute folder path (or, for git, a git://, https:// or "
                         "ssh:// URL).")  # fmt: skip
    path = Path(location).resolve()
    if not any(path.is_relative_to(root) for root in settings.SOURCE_FOLDERS):
        allowed = ", ".join(map(str, settings.SOURCE_FOLDERS)) or "none are allowed"
        raise ValueError(
            f"{location} is not under the folders sources may read (PRODRAG_SOURCE_FOLDERS: "
            f"{allowed})."
        )
    return str(path)


def source_sync(*, source: Source, allow_deletions: bool = False) -> SourceRun | None:
    """One sync of the source, recorded as a SourceRun; None when another sync of it is
    running. `allow_deletions`: apply deletions beyond the source's max deletion share.

    Locks: the source's advisory lock for the whole run; each item's document row (as
    document_create and document_delete lock it), one item per transaction."""
    if not _lock(source, "pg_try_advisory_lock"):
        return None
    try:
        # Holding the lock, no other sync of this source runs: a run still marked running
        # was stopped (its worker killed) and this one resumes its work.
        SourceRun.objects.filter(source=source, outcome=SourceRun.Outcome.RUNNING).update(
            outcome=SourceRun.Outcome.FAILED,
            error="interrupted (its worker stopped); the next run resumed it",
            finished_at=timezone.now(),
        )
        run = SourceRun.objects.create(source=source)
        _run(source, run, allow_deletions)
        return run
    finally:
        _lock(source, "pg_advisory_unlock")


def _lock(source: Source, function: str) -> bool:
    return (
        Source.objects.filter(pk=source.pk)
        .annotate(
            taken=Func(
                Value(_LOCK_SPACE),
                Cast(F("pk"), IntegerField()),  # the two-key form takes two int4
                function=function,
                output_field=BooleanField(),
            )
        )
        .values_list("taken", flat=True)
        .get()
    )


def _run(source: Source, run: SourceRun, allow_deletions: bool) -> None:
    connector = connector_for(source)
    try:
        listed = {
            item.key: item
            for item in connector.listing()
            if wanted(item.key, source.include, source.exclude)
        }
    except SourceUnavailable as exc:
        _finish(run, SourceRun.Outcome.FAILED, error=str(exc))
        logger.error("source %s could not be read, nothing deleted: %s", source, exc)
        return
    run.seen = len(listed)
    known = {item.key: item for item in SourceItem.objects.filter(source=source)}
    for number, (key, item) in enumerate(sorted(listed.items()), start=1):
        stored = known.get(key)
        if stored is not None and stored.marker == item.marker and stored.document_id:
            run.unchanged += 1
        else:
            _item_sync(source, connector, item, run)
        if number % _PROGRESS_EVERY == 0:
            run.save(update_fields=list(_COUNTED))
    gone = [stored for key, stored in known.items() if key not in listed]
    # A moved or copied file's document stays with its new item: only the others would go.
    kept = set(
        SourceItem.objects.filter(document_id__in=[g.document_id for g in gone])
        .exclude(pk__in=[g.pk for g in gone])
        .values_list("document_id", flat=True)
    )
    going = sum(1 for g in gone if g.document_id is not None and g.document_id not in kept)
    allowed = max(1, int(source.max_deletion_share * len(known)))
    if going > allowed and not allow_deletions:
        held = (
            f"{going} of the source's {len(known)} documents would be deleted, more than its "
            f"max deletion share ({source.max_deletion_share:.0%}); none deleted. Check the "
            "source, then sync with deletions allowed."
        )
        _finish(run, SourceRun.Outcome.HELD, error=held)
        logger.error("source %s: %s", source, held)
        return
    for stored in gone:
        run.deleted += _item_remove(stored)
    if connector.revision:
        source.checkpoint = {"revision": connector.revision}
        source.save(update_fields=["checkpoint"])
    _finish(run, SourceRun.Outcome.DONE)


def _item_sync(source: Source, connector: Connector, item: Listed, run: SourceRun) -> None:
    """Fetch one item and make it its document; a failure is the item's alone."""
    try:
        with connector.open(item.key) as handle, transaction.atomic():
            document, outcome = document_create(
                collection=source.collection,
                owner=source.owner,
                upload=File(handle, name=PurePosixPath(item.key).name),
                source=f"{source.location.rstrip('/')}/{item.key}",
            )
            SourceItem.objects.update_or_create(
                source=source,
                key=item.key,
                defaults={
                    "marker": item.marker,
                    "revision": connector.revision,
                    "document": document,
                    "synced_at": timezone.now(),
                },
            )
    except (ItemUnreadable, DocumentConflict, OSError) as exc:
        run.failed += 1
        run.errors.append([item.key, str(exc)])
        logger.warning("source %s: %s failed: %s", source, item.key, exc)
        return
    if outcome == UploadOutcome.CREATED:
        run.added += 1
    elif outcome == UploadOutcome.NEW_VERSION:
        run.changed += 1
    else:
        run.unchanged += 1


def _item_remove(stored: SourceItem) -> bool:
    """The item is gone: its document goes too, unless another item still has its bytes (a
    moved or copied file). Returns whether the document went.

    Locks: the item's row, then the document's (document_delete)."""
    with transaction.atomic():
        document = stored.document
        stored.delete()
        if document is None or document.source_items.exists():
            return False
        document_delete(document=document)
        return True


def _finish(run: SourceRun, outcome: str, *, error: str = "") -> None:
    run.outcome, run.error, run.finished_at = outcome, error, timezone.now()
    run.save()
    name = run.source.name
    for counted in ("added", "changed", "unchanged", "deleted", "failed"):
        metrics.SOURCE_ITEMS.labels(name, counted).inc(getattr(run, counted))
    seconds = (run.finished_at - run.started_at).total_seconds()
    metrics.SOURCE_SYNC_SECONDS.labels(name, outcome).observe(seconds)
    logger.info(
        "source %s synced: %s in %.1f s; %d seen, %d added, %d changed, %d unchanged, "
        "%d deleted, %d failed",
        name, outcome, seconds, run.seen, run.added, run.changed, run.unchanged, run.deleted,
        run.failed,
    )  # fmt: skip
