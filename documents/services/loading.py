"""Bulk loading: files and BEIR corpora into a collection, from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from guardian.shortcuts import assign_perm

from accounts.models import User
from documents.models import Collection, Document
from documents.parsing import SUPPORTED_SUFFIXES
from documents.services.queue import documents_enqueue
from documents.services.uploads import UploadOutcome, document_create


def collection_for_loading(
    *, name: str, owner_username: str | None, grant_group: str | None, open_to_staff: bool
) -> tuple[Collection, bool]:
    """The collection a bulk load goes to, created if new (owned by `owner_username`, or the
    first superuser), with `view_document` granted to `grant_group` and opened to all staff
    when asked. Returns the collection and whether it was created. Raises ValueError naming
    what is missing."""
    owner = None
    if owner_username:
        owner = User.objects.filter(username=owner_username).first()
        if owner is None:
            raise ValueError(f"No user named {owner_username!r}.")
    group = None
    if grant_group:
        group = Group.objects.filter(name=grant_group).first()
        if group is None:
            raise ValueError(f"No group named {grant_group!r}; create it in the admin first.")
    with transaction.atomic():
        collection = Collection.objects.filter(name=name).first()
        created = collection is None
        if created:
            owner = owner or User.objects.filter(is_superuser=True).order_by("pk").first()
            if owner is None:
                raise ValueError("No owner for the new collection: pass --owner USERNAME.")
            collection = Collection.objects.create(
                name=name, owner=owner, open_to_staff=open_to_staff
            )
        elif open_to_staff and not collection.open_to_staff:
            collection.open_to_staff = True
            collection.save(update_fields=["open_to_staff", "updated_at"])
        if group is not None:
            assign_perm("documents.view_document", group, collection)
    return collection, created


@dataclass
class LoadReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    document_ids: list[int] = field(default_factory=list)
    queue: bool = False
    queued: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def added(self, document_id: int) -> None:
        """A document to process. With `queue`, every full task's worth is queued at once, so
        the worker starts while the rest is still uploading."""
        self.document_ids.append(document_id)
        if self.queue and len(self.document_ids) - self.queued >= settings.INGEST_BATCH_SIZE:
            self.queue_rest()

    def queue_rest(self) -> None:
        documents_enqueue(document_ids=self.document_ids[self.queued :])
        self.queued = len(self.document_ids)


def files_collect(*, paths: Sequence[Path], recursive: bool) -> tuple[list[Path], list]:
    """The files to load: every file named, and in directories (with `recursive`, their
    subdirectories too) those of a supported type; hidden entries are passed over. Returns the
    files and the (path, reason) pairs left out, so nothing is dropped silently."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            entries = sorted(path.rglob("*") if recursive else path.iterdir())
            for entry in entries:
                relative = entry.relative_to(path)
                if any(part.startswith(".") for part in relative.parts) or not entry.is_file():
                    continue
                if entry.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(entry)
                else:
                    skipped.append((str(entry), f"unsupported type {entry.suffix or '(none)'}"))
        else:
            skipped.append((str(path), "no such file or directory"))
    return files, skipped


def files_load(
    *,
    collection: Collection,
    owner: User,
    files: Iterable[Path],
    metadata: dict | None = None,
    report: LoadReport,
) -> None:
    """Upload files into a collection (each as document_create does). With `report.queue` the
    new documents are queued as they load (the caller queues the last ones with
    `report.queue_rest()`); without, the caller processes `report.document_ids` itself."""
    for path in files:
        try:
            with path.open("rb") as handle:
                document, outcome = document_create(
                    collection=collection,
                    owner=owner,
                    upload=File(handle, name=path.name),
                    source=str(path.resolve()),
                    metadata=metadata,
                    enqueue=False,
                )
        except OSError as exc:
            report.failed.append((str(path), f"cannot read: {exc.strerror or exc}"))
            continue
        report.count(outcome)
        if outcome != UploadOutcome.UNCHANGED:
            report.added(document.pk)
        elif document.status == Document.Status.FAILED:
            report.failed.append(
                (
                    str(path),
                    f"unchanged since it failed: {document.error} (retry with "
                    "`manage.py rebuild --collection NAME --failed` after fixing the cause)",
                )
            )


def beir_corpus_load(
    *, collection: Collection, owner: User, corpus: Path, report: LoadReport
) -> None:
    """Load a BEIR `corpus.jsonl` (`_id`, `title`, `text` per line) as one plain-text document
    per row, `_id` kept as the external id, queued as files_load does. A malformed line is
    reported with its line number and skipped; the rest load."""
    with corpus.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc_id, text = str(row["_id"]), str(row["text"])
                title = str(row.get("title") or doc_id)
            except (ValueError, KeyError, TypeError) as exc:
                report.failed.append((f"{corpus}:{number}", f"not a BEIR corpus row: {exc}"))
                continue
            document, outcome = document_create(
                collection=collection,
                owner=owner,
                upload=ContentFile(text.encode(), name=f"{doc_id}.txt"),
                title=title[: Document._meta.get_field("title").max_length],
                source=f"beir:{doc_id}",
                external_id=doc_id,
                enqueue=False,
            )
            report.count(outcome)
            if outcome != UploadOutcome.UNCHANGED:
                report.added(document.pk)
