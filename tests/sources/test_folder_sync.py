"""A folder source against a real directory tree: the first sync indexes what the patterns
include; later syncs fetch only what changed, make an edit a new version, keep a moved file's
document (parsed and embedded once), delete what is gone, hold deletions beyond the source's
share, delete nothing when the folder cannot be read, let one bad item fail alone, and resume
after an interrupted run without indexing anything twice."""

import os
import re
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from core import metrics
from documents.models import Document, DocumentVersion
from sources.connectors import ItemUnreadable
from sources.connectors.folder import FolderConnector
from sources.models import Source, SourceItem, SourceRun
from sources.services import _LOCK_SPACE, _lock, source_sync
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory
from tests.sources.syncing import counts, synced

pytestmark = pytest.mark.django_db

FILES = {
    "handbook/leave.md": "# Leave\n\nEvery employee gets 27 days of annual leave.",
    "handbook/travel.md": "# Travel\n\nBook flights two weeks ahead.",
    "handbook/drafts/secret.md": "# Draft\n\nNot for indexing.",
    "notes.txt": "The canteen serves lunch from noon.",
    "image.bin": "not a document",
}


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "share"
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def source(folder):
    owner = UserFactory()
    return Source.objects.create(
        name="share", kind=Source.Kind.FOLDER, location=str(folder),
        collection=CollectionFactory(owner=owner), owner=owner,
        include=["*.md", "*.txt"], exclude=["*/drafts/*"], max_deletion_share=0.5,
    )  # fmt: skip


def test_the_first_sync_indexes_what_the_patterns_include(source):
    run = synced(source)

    assert run.outcome == SourceRun.Outcome.DONE
    assert counts(run) == (3, 3, 0, 0, 0, 0)
    documents = Document.objects.filter(collection=source.collection)
    assert {d.source for d in documents} == {
        f"{source.location}/handbook/leave.md",
        f"{source.location}/handbook/travel.md",
        f"{source.location}/notes.txt",
    }
    assert set(documents.values_list("status", flat=True)) == {"ready"}
    assert SourceItem.objects.filter(source=source).count() == 3


def test_a_second_sync_of_an_unchanged_folder_fetches_nothing(source, monkeypatch):
    synced(source)
    opened = []
    real_open = FolderConnector.open
    monkeypatch.setattr(
        FolderConnector, "open", lambda self, key: opened.append(key) or real_open(self, key)
    )

    run = synced(source)

    assert counts(run) == (3, 0, 0, 3, 0, 0) and opened == []
    assert DocumentVersion.objects.count() == 3


def test_an_edit_is_a_new_version_and_a_touch_is_not(source, folder):
    synced(source)
    leave = Document.objects.get(source__endswith="leave.md")
    (folder / "handbook/leave.md").write_text("# Leave\n\nEvery employee gets 30 days of leave.")
    notes = folder / "notes.txt"
    os.utime(notes, ns=(notes.stat().st_atime_ns, notes.stat().st_mtime_ns + 10**9))

    run = synced(source)

    assert counts(run) == (3, 0, 1, 2, 0, 0)  # the touched file: fetched, same bytes
    leave.refresh_from_db()
    assert leave.versions.count() == 2 and leave.status == "ready"
    assert "30 days" in " ".join(leave.chunks.values_list("text", flat=True))
    assert Document.objects.get(source__endswith="notes.txt").versions.count() == 1


def test_a_moved_file_keeps_its_document_and_a_deleted_one_leaves_the_index(source, folder):
    synced(source)
    travel = Document.objects.get(source__endswith="travel.md")
    (folder / "handbook/travel.md").rename(folder / "travel-policy.md")
    (folder / "notes.txt").unlink()

    run = synced(source)

    assert counts(run) == (2, 0, 0, 2, 1, 0)  # the moved bytes are the document it had
    assert Document.objects.filter(pk=travel.pk).exists()
    assert travel.versions.count() == 1
    assert not Document.objects.filter(source__endswith="notes.txt").exists()
    assert set(SourceItem.objects.values_list("key", flat=True)) == {
        "handbook/leave.md",
        "travel-policy.md",
    }


def test_a_folder_that_lists_far_fewer_items_deletes_nothing_beyond_its_share(source, folder):
    synced(source)
    for name in ("handbook/leave.md", "handbook/travel.md", "notes.txt"):
        (folder / name).unlink()

    held = synced(source)

    assert held.outcome == SourceRun.Outcome.HELD and "max deletion share" in held.error
    assert Document.objects.filter(collection=source.collection).count() == 3
    with pytest.raises(CommandError, match="none deleted"):
        call_command("source_sync", "share")
    applied = synced(source, allow_deletions=True)
    assert applied.deleted == 3 and not Document.objects.exists()


def test_an_unreadable_folder_fails_the_run_and_deletes_nothing(source, folder):
    synced(source)
    folder.rename(folder.with_name("moved-away"))

    run = synced(source)

    assert run.outcome == SourceRun.Outcome.FAILED and "not a readable folder" in run.error
    assert Document.objects.filter(collection=source.collection).count() == 3


def test_one_bad_item_fails_alone_with_its_reason(source, monkeypatch):
    real_open = FolderConnector.open

    def vanishing(self, key):
        if key == "notes.txt":
            raise ItemUnreadable("cannot read notes.txt: No such file or directory")
        return real_open(self, key)

    monkeypatch.setattr(FolderConnector, "open", vanishing)
    run = synced(source)

    assert counts(run) == (3, 2, 0, 0, 0, 1) and run.outcome == SourceRun.Outcome.DONE
    assert run.errors == [["notes.txt", "cannot read notes.txt: No such file or directory"]]
    assert not SourceItem.objects.filter(key="notes.txt").exists()  # tried again next time


def test_an_interrupted_sync_resumes_without_indexing_anything_twice(source, monkeypatch):
    real_open = FolderConnector.open

    def dies_at_notes(self, key):
        if key == "notes.txt":
            raise KeyboardInterrupt  # the process stops here, as a killed worker would
        return real_open(self, key)

    monkeypatch.setattr(FolderConnector, "open", dies_at_notes)
    with pytest.raises(KeyboardInterrupt):
        source_sync(source=source)
    assert SourceRun.objects.get().outcome == SourceRun.Outcome.RUNNING
    monkeypatch.setattr(FolderConnector, "open", real_open)

    run = synced(source)

    assert counts(run) == (3, 1, 0, 2, 0, 0)
    assert Document.objects.count() == 3 and DocumentVersion.objects.count() == 3
    interrupted = SourceRun.objects.exclude(pk=run.pk).get()
    assert interrupted.outcome == SourceRun.Outcome.FAILED and "interrupted" in interrupted.error


@pytest.mark.django_db(transaction=True)
def test_a_second_sync_of_a_source_waits_its_turn(source):
    """The lock is its database session's: held in another session, a sync does not start."""
    taken = threading.Event()
    release = threading.Event()

    def hold():
        try:
            assert _lock(source, _LOCK_SPACE, "pg_try_advisory_lock")
            taken.set()
            release.wait(30)
            _lock(source, _LOCK_SPACE, "pg_advisory_unlock")
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(30)
    try:
        assert source_sync(source=source) is None
        with pytest.raises(CommandError, match="is running"):
            call_command("source_sync", "share")
    finally:
        release.set()
        holder.join(30)
    assert source_sync(source=source).outcome == SourceRun.Outcome.DONE


def test_a_sync_is_counted_timed_and_its_last_success_reported(source, folder):
    added = metrics.SOURCE_ITEMS.labels("share", "added")._value.get()
    synced(source)
    (folder / "notes.txt").unlink()
    synced(source)

    assert metrics.SOURCE_ITEMS.labels("share", "added")._value.get() == added + 3
    exposition = metrics.metrics_exposition().decode()
    assert 'prodrag_source_sync_seconds_count{outcome="done",source="share"}' in exposition
    age = re.search(r'prodrag_source_last_success_age_seconds\{source="share"\} (\S+)', exposition)
    assert age is not None and 0 <= float(age.group(1)) < 60
