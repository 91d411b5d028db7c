"""A source sync in a real worker process killed outright (kill -9, its pool process too)
halfway: the source is resumed from its checkpoint by another worker, and every item is in
the index exactly once: none twice, none lost."""

import signal
import time

import pytest
from django.db import connection

from documents.models import Document, DocumentVersion
from sources.models import Source, SourceItem, SourceRun
from sources.tasks import source_sync_run
from tests.accounts.factories import UserFactory
from tests.documents.conftest import Worker, worker_env
from tests.documents.factories import CollectionFactory

pytestmark = pytest.mark.django_db(transaction=True)

# A queue of this test's own: the session's worker (tests/documents/conftest.py) stays out.
QUEUE = "sources-kill"
FILES = 600


def start_worker(tmp_path, name: str) -> Worker:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "media").mkdir()
    env = worker_env(directory, directory / "media") | {"PGAPPNAME": f"worker-{name}"}
    worker = Worker(env, directory / "worker.log", name=name, queues=[QUEUE])
    worker.start()
    return worker


def wait_for(condition, what: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.05)


def test_a_sync_killed_halfway_is_resumed_by_another_worker_exactly_once(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    for n in range(FILES):
        (share / f"note-{n:03}.md").write_text(f"# Note {n}\n\nShift rota number {n} of the plant.")
    owner = UserFactory()
    source = Source.objects.create(name="share", kind="folder", location=str(share), owner=owner,
                                   collection=CollectionFactory(owner=owner))  # fmt: skip
    first = start_worker(tmp_path, "a")
    try:
        source_sync_run.apply_async((source.pk,), queue=QUEUE)
        wait_for(lambda: SourceItem.objects.filter(source=source).count() >= FILES // 4,
                 "a quarter of the items synced")  # fmt: skip
        for process in [*first.pool_children(), first.process]:
            process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
    finally:
        first.stop()
    synced_before = SourceItem.objects.filter(source=source).count()
    assert FILES // 4 <= synced_before < FILES  # killed halfway
    assert SourceRun.objects.get(source=source).outcome == SourceRun.Outcome.RUNNING
    # The killed worker's sessions end with it (the server notices the closed sockets), and
    # with them the source's advisory lock.
    with connection.cursor() as cursor:
        wait_for(lambda: not cursor.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'worker-a'"
        ).fetchone(), "the killed worker's sessions to end")  # fmt: skip

    second = start_worker(tmp_path, "b")
    try:
        source_sync_run.apply_async((source.pk,), queue=QUEUE)
        wait_for(lambda: SourceRun.objects.filter(source=source, outcome="done").exists(),
                 "the resumed sync")  # fmt: skip
    finally:
        second.stop()

    interrupted, resumed = SourceRun.objects.filter(source=source).order_by("started_at")
    assert interrupted.outcome == SourceRun.Outcome.FAILED and "interrupted" in interrupted.error
    assert (resumed.seen, resumed.deleted, resumed.failed) == (FILES, 0, 0)
    assert resumed.added + resumed.unchanged == FILES
    assert resumed.added == FILES - synced_before  # what the first worker committed stayed
    documents = Document.objects.filter(collection=source.collection)
    assert documents.count() == FILES
    assert DocumentVersion.objects.filter(document__in=documents).count() == FILES
    assert SourceItem.objects.filter(source=source).count() == FILES
    assert documents.values("source").distinct().count() == FILES
