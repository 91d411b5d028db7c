"""Two worker processes on one queue, as two hosts would run them, on the default (database)
broker: uploads in bursts, each burst delivered twice, and one worker killed outright while it
works on a batch."""

import re
import signal
import time

import psutil
import pytest
from django.core.files.base import ContentFile
from django.db import connection

from documents.models import ChunkEmbedding, Document
from documents.services.queue import documents_enqueue
from documents.services.uploads import document_create
from documents.tasks import documents_requeue
from tests.accounts.factories import UserFactory
from tests.documents.conftest import Worker, worker_env
from tests.documents.factories import CollectionFactory

pytestmark = pytest.mark.django_db(transaction=True)

# A queue of this test's own: the session's worker (tests/documents/conftest.py) stays out.
QUEUE = "ingestion-two-hosts"
BURSTS, PER_BURST = 3, 10


@pytest.fixture
def hosts(settings, worker_media, tmp_path):
    """Workers "a" and "b" consuming QUEUE; the test's ingestion goes there."""
    settings.MEDIA_ROOT = worker_media
    settings.INGESTION_QUEUE = QUEUE
    settings.INGEST_BATCH_SIZE = 4
    workers = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        # Its database sessions carry its name, so that the test sees which documents it holds.
        env = worker_env(directory, worker_media) | {"PGAPPNAME": f"worker-{name}"}
        worker = Worker(env, directory / "worker.log", name=name, queues=[QUEUE])
        worker.start()
        workers.append(worker)
    yield workers
    for worker in workers:
        worker.stop()


def _upload_burst(collection, owner, burst: int, *, twice: bool = True) -> list[int]:
    """A burst of uploads, queued as uploads are and then once more (`twice`), or only once,
    in batches: then a batch lost with a killed worker has no other delivery."""
    ids = []
    for n in range(PER_BURST):
        text = "\n\n".join(
            f"Burst {burst} file {n}, paragraph {p}: the rota for the night shift changes."
            for p in range(60)
        )
        document, _ = document_create(
            collection=collection,
            owner=owner,
            upload=ContentFile(text.encode(), name=f"burst{burst}-{n}.txt"),
            enqueue=twice,
        )
        ids.append(document.pk)
    documents_enqueue(document_ids=ids)  # delivered a second time, or once in batches
    return ids


def _holding_a_document(worker: Worker) -> bool:
    """The worker is in the middle of a document: one of its sessions holds a document's
    advisory lock (documents.services.queue), which dies with it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
            "WHERE locktype = 'advisory' AND granted AND application_name = %s",
            [f"worker-{worker.name}"],
        )
        return cursor.fetchone()[0] > 0


def _kill_host(worker: Worker) -> None:
    """SIGKILL the worker and its pool at once, as a host that dies."""
    main = psutil.Process(worker.process.pid)
    for process in [*main.children(recursive=True), main]:
        process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=30)


def test_two_workers_index_every_burst_exactly_once_though_one_is_killed_mid_batch(hosts, settings):
    """GIVEN workers a and b on one queue
    WHEN documents arrive in three bursts, the later two queued twice, and worker a is killed
    with SIGKILL while it works on a batch of the first (the database broker loses its
    unacknowledged message, and nothing else delivers that batch)
    THEN the stalled-document sweep (the beat task at its interval, with its settings) hands
    a's documents to b within a sweep of its orphan timeout, and every document ends ready
    with exactly one set of passages, each embedded once, its ready line logged once."""
    a, b = hosts
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)
    # The first burst once: the batch a dies with is delivered to nobody else.
    ids = _upload_burst(collection, owner, 0, twice=False)
    deadline = time.monotonic() + 120
    while not _holding_a_document(a):
        assert time.monotonic() < deadline, "worker a never took a batch"
        time.sleep(0.1)
    _kill_host(a)
    killed_at = time.monotonic()
    for burst in range(1, BURSTS):
        ids += _upload_burst(collection, owner, burst)

    # The sweep as beat runs it: the task, at its schedule's interval, with its settings; but
    # the rest of a's batch, still pending when it died (no worker, no message), comes back
    # after a minute rather than PRODRAG_INGEST_STALL_SECONDS' ten.
    settings.INGEST_STALL_SECONDS = 60
    interval = settings.CELERY_BEAT_SCHEDULE["requeue-stalled-documents"]["schedule"]
    finished = {Document.Status.READY, Document.Status.FAILED}
    deadline, next_sweep, requeued = time.monotonic() + 240, time.monotonic(), 0
    while set(Document.objects.filter(pk__in=ids).values_list("status", flat=True)) - finished:
        assert time.monotonic() < deadline, "documents were left unfinished"
        if time.monotonic() >= next_sweep:
            requeued += documents_requeue()
            next_sweep += interval
        time.sleep(1)
    recovered_in = time.monotonic() - killed_at

    # a's batch was lost with it: only the sweep could have brought it back.
    assert requeued > 0

    documents = Document.objects.filter(pk__in=ids)
    assert documents.count() == BURSTS * PER_BURST
    assert set(documents.values_list("status", flat=True)) == {"ready"}
    assert "signal 9" not in b.log.read_text()
    for document in documents:
        chunks = document.chunks.all()
        assert {c.version_id for c in chunks} == {document.current_version_id}
        assert sorted(c.ordinal for c in chunks) == list(range(len(chunks)))
        assert document.versions.count() == 1
    assert ChunkEmbedding.objects.filter(document_id__in=ids).count() == sum(
        d.chunks.count() for d in documents
    )
    logs = a.log.read_text() + b.log.read_text()
    for pk in ids:
        assert len(re.findall(rf"document {pk} ready:", logs)) == 1, pk
    # The stall timeout (60 s), a sweep interval (30 s), then b processing the batch.
    assert recovered_in < 180
