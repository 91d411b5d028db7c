"""Syncing a source: make the collection's documents from it what the source holds now.

A sync lists the source (sources.connectors), fetches only the items whose marker changed
since the last sync, and hands each to documents.services.uploads.document_create: a new item
becomes a document, an edited one the document's next version, and bytes already in the
collection (a moved or copied file) the document that holds them, parsed and embedded once.
Items gone from the source are deleted from the index, unless more would go than the source's
`max_deletion_share` allows (the run is then held and says so). Each item is committed with
its marker, so a sync killed at any point resumes where it stopped: no item is indexed twice,
none is lost. One sync per source runs at a time (an advisory lock its database session
holds, which dies with a killed worker).

In mirror mode each item's readers are read from the source with its content and set as its
document's readers in the same transaction; the permission pass (source_permissions_sync)
reads them again, more often and without the content, so that a revocation there reaches
the index within minutes."""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import BooleanField, F, Func, IntegerField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from core import metrics
from documents.models import (
    Collection,
    Document,
    DocumentGroupObjectPermission,
    DocumentUserObjectPermission,
)
from documents.services.acl import document_readers_set
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
    Readers,
    SourceUnavailable,
    wanted,
)
from sources.connectors.folder import FolderConnector
from sources.connectors.git import GitConnector
from sources.connectors.s3 import S3Connector
from sources.connectors.smb import SmbConnector
from sources.connectors.web import WebConnector
from sources.connectors.webdav import WebDavConnector
from sources.credentials import Credentials, credentials_open, credentials_seal
from sources.models import Source, SourceItem, SourceRun
from sources.principals import PrincipalMap

logger = logging.getLogger("prodrag.sources")

_LOCK_SPACE = 0x736F7572  # "sour": sources' advisory locks, apart from the documents' keys
_PERMISSION_LOCK_SPACE = 0x7065726D  # "perm": a source's permission pass
_PROGRESS_SECONDS = 2.0  # how often a running sync saves its counts (the admin's progress)
_COUNTED = ("seen", "added", "changed", "unchanged", "deleted", "failed", "errors")


def connector_for(source: Source) -> Connector:
    credentials = credentials_open(source.credentials)
    if source.kind == Source.Kind.GIT:
        mirror = settings.SOURCES_DIR / f"{source.pk}.git"
        return GitConnector(source.location, source.branch, mirror, credentials)
    if source.kind == Source.Kind.WEBDAV:
        return WebDavConnector(source.location, credentials)
    if source.kind == Source.Kind.S3:
        return S3Connector(source.location, source.endpoint, credentials)
    if source.kind == Source.Kind.WEB:
        return WebConnector(source.location, source.hosts, credentials, source.checkpoint)
    if source.kind == Source.Kind.SMB:
        return SmbConnector(source.location, credentials)
    return FolderConnector(source.location)


# A host name a website source may also crawl (its `hosts`): labels and dots, nothing else.
_HOST = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
# Kinds whose items carry their own permissions, which mirror mode reads.
MIRRORED_KINDS = (Source.Kind.FOLDER, Source.Kind.SMB)
_SCHEMES = {
    Source.Kind.GIT: ("git://", "http://", "https://", "ssh://"),
    Source.Kind.WEB: ("http://", "https://"),
    Source.Kind.WEBDAV: ("http://", "https://"),
    Source.Kind.S3: ("s3://",),
    Source.Kind.SMB: ("smb://",),
}


def source_location_check(*, kind: str, location: str, folders: list[Path] | None) -> str:
    """The location as it is stored, or ValueError saying why not: a URL of the kind's
    schemes, or a folder (or a repository given as a path) under one of `folders` (None: any),
    so that managing a collection never means reading the server's own files."""
    location = location.strip()
    schemes = _SCHEMES.get(kind, ())
    if location.startswith(schemes) and urlsplit(location).hostname:
        return location
    if kind not in (Source.Kind.FOLDER, Source.Kind.GIT):
        raise ValueError(f"Give a URL starting with {' or '.join(schemes)} and naming a host.")
    if not location.startswith("/"):
        raise ValueError("Give an absolute folder path (or, for git, a git://, https:// or "
                         "ssh:// URL).")  # fmt: skip
    path = Path(location).resolve()
    if folders is not None and not any(path.is_relative_to(root) for root in folders):
        allowed = ", ".join(map(str, folders)) or "none are allowed"
        raise ValueError(
            f"{location} is not under the folders sources may read (PRODRAG_SOURCE_FOLDERS: "
            f"{allowed})."
        )
    return str(path)


def source_check(*, source: Source, folders_checked: bool = True) -> None:
    """ValidationError (by field) when the source cannot be saved as it is; its location is
    made canonical. `folders_checked`: a folder must lie under PRODRAG_SOURCE_FOLDERS (the
    admin and the API; `manage.py source_add` is the operator's).

    A mirror source's collection has its readers set per document (documents'
    `readers_per_document`, set by source_save), so that the collection's readers never read
    every mirrored document: it must be empty or already so; a collection-mode source cannot
    feed such a collection (its documents would be read by none but the managers)."""
    errors = {}
    mirror = source.permission_mode == Source.PermissionMode.MIRROR
    try:
        source.location = source_location_check(
            kind=source.kind,
            location=source.location,
            folders=settings.SOURCE_FOLDERS if folders_checked else None,
        )
    except ValueError as exc:
        errors["location"] = str(exc)
    if any(not _HOST.fullmatch(str(host)) for host in source.hosts or []):
        errors["hosts"] = "Give host names alone (intranet.example.org), no scheme or path."
    if mirror and source.kind not in MIRRORED_KINDS:
        errors["permission_mode"] = (
            f"{Source.Kind(source.kind).label} sources keep no permissions per item: use "
            "collection mode, and grant on the collection."
        )
    collection = source.collection
    if source.pk is not None:
        before = Source.objects.get(pk=source.pk)
        if before.collection_id != source.collection_id and source.items.exists():
            errors["collection"] = (
                "A source's documents stay in the collection they were synced into: add a new "
                "source for the other collection (and delete this one)."
            )
    if mirror and not collection.readers_per_document and collection.documents.exists():
        errors["collection"] = (
            f"{collection} has documents that its readers read through the collection: a "
            "mirror source needs a collection of its own (empty, or already fed by mirror "
            "sources)."
        )
    if not mirror and collection.readers_per_document:
        errors["permission_mode"] = (
            f"{collection}'s documents are read by their own readers (it is fed by mirror "
            "sources): a source in collection mode would show its documents to none but the "
            "collection's managers. Use mirror mode, or another collection."
        )
    if errors:
        raise ValidationError(errors)


def source_save(
    *, source: Source, credentials: Credentials | None = None, folders_checked: bool = True
) -> Source:
    """Check (source_check) and save a source, with its collection set to per-document
    readers in mirror mode; `credentials` None keeps those stored.

    Locks: the target collection's row, so that two sources saved onto it agree."""
    with transaction.atomic():
        source.collection = Collection.objects.select_for_update().get(pk=source.collection_id)
        source_check(source=source, folders_checked=folders_checked)
        if credentials is not None:
            source.credentials = credentials_seal(credentials)
        source.save()
        collection = source.collection
        if source.permission_mode == Source.PermissionMode.MIRROR and (
            not collection.readers_per_document
        ):
            collection.readers_per_document = True
            collection.save(update_fields=["readers_per_document", "updated_at"])
    return source


def source_sync(*, source: Source, allow_deletions: bool = False) -> SourceRun | None:
    """One sync of the source, recorded as a SourceRun, then (mirror mode) its permission
    pass; None when another sync of it is running. `allow_deletions`: apply deletions
    beyond the source's max deletion share.

    Locks: the source's advisory lock for the whole run; each item's document row (as
    document_create and document_delete lock it), one item per transaction."""
    if not _lock(source, _LOCK_SPACE, "pg_try_advisory_lock"):
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
    finally:
        _lock(source, _LOCK_SPACE, "pg_advisory_unlock")
    # The unchanged items' readers too (mirror mode): a sync leaves none of them stale.
    source_permissions_sync(source=source)
    return run


def _lock(source: Source, space: int, function: str) -> bool:
    return (
        Source.objects.filter(pk=source.pk)
        .annotate(
            taken=Func(
                Value(space),
                Cast(F("pk"), IntegerField()),  # the two-key form takes two int4
                function=function,
                output_field=BooleanField(),
            )
        )
        .values_list("taken", flat=True)
        .get()
    )


def _listed(source: Source, connector: Connector) -> tuple[dict[str, Listed], set[str] | None]:
    """The items to look at, by key, and the keys of items removed, or None for a full
    listing (then whatever is not listed is gone). A connector that can tell what changed
    since the checkpoint (git) is asked that, unless the patterns changed since (which makes
    other items wanted or unwanted) or the checkpoint is empty."""
    patterns = {"include": source.include, "exclude": source.exclude}
    changes = (
        connector.changes(source.checkpoint)
        if source.checkpoint.get("patterns") == patterns
        else None
    )
    if changes is None:
        items, removed = connector.listing(), None
    else:
        items, removed = changes.changed, set(changes.removed)
    listed = {item.key: item for item in items if wanted(item.key, source.include, source.exclude)}
    return listed, removed


def _run(source: Source, run: SourceRun, allow_deletions: bool) -> None:
    connector = connector_for(source)
    try:
        listed, removed = _listed(source, connector)
    except SourceUnavailable as exc:
        _finish(run, SourceRun.Outcome.FAILED, error=str(exc))
        logger.error("source %s could not be read, nothing deleted: %s", source, exc)
        return
    run.seen = len(listed)
    run.save(update_fields=["seen"])  # the admin shows progress against it
    items = SourceItem.objects.filter(source=source)
    total = items.count()
    if removed is not None:
        items = items.filter(key__in=[*listed, *removed])
    known = {item.key: item for item in items}
    names = PrincipalMap()
    saved = time.monotonic()
    for key, item in sorted(listed.items()):
        stored = known.get(key)
        if stored is not None and stored.marker == item.marker and stored.document_id:
            run.unchanged += 1
        else:
            _item_sync(source, connector, item, run, names)
        if time.monotonic() - saved >= _PROGRESS_SECONDS:
            run.save(update_fields=list(_COUNTED))
            saved = time.monotonic()
    gone = [
        stored
        for key, stored in known.items()
        if (key not in listed if removed is None else key in removed)
    ]
    # A moved or copied file's document stays with its new item: only the others would go.
    kept = set(
        SourceItem.objects.filter(document_id__in=[g.document_id for g in gone])
        .exclude(pk__in=[g.pk for g in gone])
        .values_list("document_id", flat=True)
    )
    going = sum(1 for g in gone if g.document_id is not None and g.document_id not in kept)
    allowed = max(1, int(source.max_deletion_share * total))
    if going > allowed and not allow_deletions:
        held = (
            f"{going} of the source's {total} documents would be deleted, more than its "
            f"max deletion share ({source.max_deletion_share:.0%}); none deleted. Check the "
            "source, then sync with deletions allowed."
        )
        _finish(run, SourceRun.Outcome.HELD, error=held)
        logger.error("source %s: %s", source, held)
        return
    for stored in gone:
        run.deleted += _item_remove(stored, names)
    # After a run with failures the next one lists everything, so that a diff since this
    # run's commit does not pass over the items that failed.
    patterns = {"include": source.include, "exclude": source.exclude}
    source.checkpoint = {} if run.failed else connector.checkpoint() | {"patterns": patterns}
    source.save(update_fields=["checkpoint"])
    _finish(run, SourceRun.Outcome.DONE)


def _item_sync(
    source: Source, connector: Connector, item: Listed, run: SourceRun, names: PrincipalMap
) -> None:
    """Fetch one item (and, in mirror mode, its readers) and make it its document; a failure
    is the item's alone."""
    try:
        readers = _readers_read(source, connector, item.key)
        with connector.open(item.key) as handle, transaction.atomic():
            document, outcome = document_create(
                collection=source.collection,
                owner=source.owner,
                upload=File(handle, name=connector.file_name(item.key)),
                source=source.address(item.key),
                origin=connector.origin(item),
            )
            SourceItem.objects.update_or_create(
                source=source,
                key=item.key,
                defaults={
                    "marker": item.marker,
                    "revision": connector.revision,
                    "document": document,
                    "readers": readers,
                    "synced_at": timezone.now(),
                },
            )
            if source.permission_mode == Source.PermissionMode.MIRROR:
                _readers_apply(document, names)
    except (ItemUnreadable, SourceUnavailable, DocumentConflict, OSError) as exc:
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


def _item_remove(stored: SourceItem, names: PrincipalMap) -> bool:
    """The item is gone: its document goes too, unless another item still has its bytes (a
    moved or copied file), whose readers it keeps. Returns whether the document went.

    Locks: the item's row, then the document's (document_delete, document_readers_set)."""
    with transaction.atomic():
        document = stored.document
        stored.delete()
        if document is None:
            return False
        if document.source_items.exists():
            if stored.source.permission_mode == Source.PermissionMode.MIRROR:
                _readers_apply(document, names)
            return False
        document_delete(document=document)
        return True


def _readers_read(source: Source, connector: Connector, key: str) -> dict | None:
    """The item's readers as the source has them (mirror mode), or None: not mirrored, or its
    ACL cannot be read (which grants nothing)."""
    if source.permission_mode != Source.PermissionMode.MIRROR:
        return None
    try:
        return connector.readers(key).as_json()
    except ItemUnreadable as exc:
        logger.warning("source %s: the readers of %s cannot be read, none granted: %s",
                       source, key, exc)  # fmt: skip
        return None


def _readers_union(items: list[dict | None], names: PrincipalMap):
    """The prodrag readers of a document made of these items (one, or several copies of the
    same bytes: whoever may read one copy may read the content)."""
    users, groups, everyone = set(), set(), False
    for readers in items:
        if readers is None:
            continue
        mapped = names.mapped(
            Readers(frozenset(readers["users"]), frozenset(readers["groups"]),
                    readers["everyone"])
        )  # fmt: skip
        users |= mapped.users
        groups |= mapped.groups
        everyone = everyone or mapped.everyone
    return users, groups, everyone


def _readers_apply(document: Document, names: PrincipalMap) -> bool:
    users, groups, everyone = _readers_union(
        list(
            document.source_items.filter(
                source__permission_mode=Source.PermissionMode.MIRROR
            ).values_list("readers", flat=True)
        ),
        names,
    )
    return document_readers_set(document=document, users=users, groups=groups, everyone=everyone)


def source_permissions_sync(*, source: Source) -> int | None:
    """The permission pass of a mirror source: read each synced item's readers again (not its
    content) and set its document's readers where they changed. Returns how many documents'
    readers changed; None when it did not run: another pass of the source is running, or the
    source cannot be reached (no reader changes; the permission lag grows until it can).

    Locks: the source's permission-pass advisory lock; each changed document's row
    (document_readers_set)."""
    if source.permission_mode != Source.PermissionMode.MIRROR:
        return 0
    if not _lock(source, _PERMISSION_LOCK_SPACE, "pg_try_advisory_lock"):
        return None
    try:
        started = timezone.now()
        connector = connector_for(source)
        items = list(SourceItem.objects.filter(source=source, document__isnull=False))
        try:
            read = [_readers_read(source, connector, item.key) for item in items]
        except SourceUnavailable as exc:
            logger.error("source %s permission pass: the source cannot be reached, no readers "
                         "changed: %s", source, exc)  # fmt: skip
            return None
        for item, readers in zip(items, read, strict=True):
            if readers != item.readers:
                item.readers = readers
                item.save(update_fields=["readers"])
        names = PrincipalMap()
        by_document: dict[int, list[dict | None]] = defaultdict(list)
        for item in items:
            by_document[item.document_id].append(item.readers)
        wanted = {
            document_id: _readers_union(readers, names)
            for document_id, readers in by_document.items()
        }
        changed = [
            document_id
            for document_id, held in _readers_held(set(by_document)).items()
            if held != wanted[document_id]
        ]
        for document in Document.objects.filter(pk__in=changed):
            _readers_apply(document, names)
        Source.objects.filter(pk=source.pk).update(permissions_checked_at=started)
        seconds = (timezone.now() - started).total_seconds()
        metrics.SOURCE_PERMISSION_SECONDS.labels(source.name).observe(seconds)
        logger.info("source %s permission pass: %d items, %d documents' readers changed in "
                    "%.1f s", source.name, len(items), len(changed), seconds)  # fmt: skip
        return len(changed)
    finally:
        _lock(source, _PERMISSION_LOCK_SPACE, "pg_advisory_unlock")


def _readers_held(documents: set[int]) -> dict[int, tuple[set[int], set[int], bool]]:
    """The documents' readers as their grants now give them (as _readers_union computes)."""
    held = {
        pk: (set(), set(), open_to_staff)
        for pk, open_to_staff in Document.objects.filter(pk__in=documents).values_list(
            "pk", "open_to_staff"
        )
    }
    for grants, at, field in (
        (DocumentUserObjectPermission, 0, "user_id"),
        (DocumentGroupObjectPermission, 1, "group_id"),
    ):
        for document_id, principal in grants.objects.filter(
            content_object_id__in=held, permission__codename="view_document"
        ).values_list("content_object_id", field):
            held[document_id][at].add(principal)
    return held


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
