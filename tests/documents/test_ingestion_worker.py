"""Ingestion end to end through a real Celery worker process on the embedded database."""

import json
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from documents.models import Chunk, Document
from documents.services.loading import LoadReport, files_load
from documents.services.queue import documents_enqueue
from documents.services.uploads import document_create
from tests.accounts.factories import UserFactory
from tests.api import api_client
from tests.documents.conftest import WORKER_LIMITS, documents_settle
from tests.documents.factories import CollectionFactory
from tests.documents.files import broken_files, good_files

pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED_ERRORS = {
    "truncated.pdf": "damaged or truncated",
    "encrypted.pdf": "encrypted",
    "empty.txt": "empty",
    "latin1.txt": "not valid UTF-8",
    "oversized.txt": "the limit is 2,000,000",
    "bomb.docx": "zip bomb",
    "renamed.pdf": "content is a Word document",
}


def test_every_format_is_indexed_and_each_broken_file_fails_alone(worker, tmp_path):
    """GIVEN one file of every supported format and seven broken files in one batch
    WHEN the worker processes the batch
    THEN every good file is searchable with its structure, and each broken one is failed
    with its own reason."""
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)
    broken = broken_files(
        tmp_path / "broken",
        size_limit=int(WORKER_LIMITS["PRODRAG_MAX_FILE_BYTES"]),
        unzipped_limit=int(WORKER_LIMITS["PRODRAG_MAX_UNZIPPED_BYTES"]),
    )
    report = LoadReport()
    files_load(
        collection=collection,
        owner=owner,
        files=[*good_files(tmp_path / "good"), *broken.values()],
        report=report,
    )
    documents_enqueue(document_ids=report.document_ids)
    documents = {
        doc.source.rsplit("/", 1)[-1]: doc for doc in documents_settle(report.document_ids)
    }

    for name, fragment in EXPECTED_ERRORS.items():
        assert documents[name].status == Document.Status.FAILED, name
        assert fragment in documents[name].error, (name, documents[name].error)
    good = {name: doc for name, doc in documents.items() if name not in EXPECTED_ERRORS}
    assert len(good) == 10
    for name, doc in good.items():
        assert doc.status == Document.Status.READY, (name, doc.error)
        assert doc.chunks.exists(), name
        assert doc.indexed_version_id == doc.current_version_id
        assert set(doc.stage_seconds) == {"parse", "chunk", "embed", "store"}
    assert not Chunk.objects.filter(document__in=good.values(), search_vector=None).exists()
    assert not Chunk.objects.filter(document__in=good.values(), vector=None).exists()

    pdf = good["security-handbook.pdf"]
    assert pdf.title == "Security handbook"
    assert pdf.properties["author"] == "Northwind Labs Security"
    assert pdf.properties["page_count"] == 3
    assert pdf.chunks.filter(page_end=3).exists()
    docx = good["leave-policy.docx"]
    assert docx.language == "en"
    carry = docx.chunks.get(text__contains="carried over")
    assert carry.heading_path == ["Leave policy", "Carry-over"]
    assert docx.current_version.text[carry.char_start : carry.char_end] == carry.text
    assert good["office-locations.xlsx"].chunks.filter(text__contains="Lisbon").exists()
    python = good["vacation_calculator.py"]
    assert python.chunks.filter(
        heading_path__contains=["class LeaveBalance", "def carry_over(self, unused: int)"]
    ).exists()
    assert good["release-process.rst"].chunks.filter(heading_path__contains=["Rollback"]).exists()


def test_new_version_replaces_the_old_one_atomically(worker):
    """GIVEN an indexed document
    WHEN new bytes arrive under the same source and are processed
    THEN at every moment its passages are all of one version, then all of the new one."""
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)
    first = "\n\n".join(f"Old paragraph {n} about the cafeteria menu." for n in range(40))
    document, _ = document_create(
        collection=collection, owner=owner, upload=ContentFile(first.encode(), name="menu.txt")
    )
    documents_settle([document.pk])
    old = (document.versions.get(number=1).pk, document.chunks.count())
    second = "\n\n".join(f"New paragraph {n} about the parking rules." for n in range(400))
    same, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(first.encode(), name="menu.txt")
    )
    assert outcome == "unchanged" and same.pk == document.pk

    document, outcome = document_create(
        collection=collection,
        owner=owner,
        upload=ContentFile(second.encode(), name="menu.txt"),
        enqueue=False,
    )
    assert outcome == "new_version"
    with document_held(document.pk):
        documents_enqueue(document_ids=[document.pk])
        worker_waits_on_lock()
        # The worker has the new version in hand, and search still sees all of the old one.
        assert _versions_seen(document) == old
    while Document.objects.get(pk=document.pk).status != Document.Status.READY:
        assert Document.objects.get(pk=document.pk).status != Document.Status.FAILED
        _versions_seen(document)  # all of one version, at every moment
    document.refresh_from_db()
    assert document.indexed_version.number == 2
    assert set(document.chunks.values_list("version", flat=True)) == {document.current_version_id}
    assert not document.chunks.filter(text__contains="cafeteria").exists()


def _versions_seen(document) -> tuple[int, int]:
    versions = list(Chunk.objects.filter(document=document).values_list("version", flat=True))
    assert len(set(versions)) == 1, "passages of two versions at once"
    return versions[0], len(versions)


@contextmanager
def document_held(document_id: int):
    """The document's row locked from a connection of the test's own: a worker processing it
    waits at its first write (claiming it), with its task in flight, until the block ends."""
    with psycopg.connect(**connection.get_connection_params()) as held:
        held.execute("SELECT id FROM documents_document WHERE id = %s FOR UPDATE", [document_id])
        yield
    # Leaving the block commits the connection's transaction: the worker goes on.


def worker_waits_on_lock(timeout: float = 120) -> int:
    """The backend pid of the session that waits on a documents_document row lock, the state
    document_held creates, once there is one; fails after `timeout` seconds without it."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as probe:
        while time.monotonic() < deadline:
            waiting = probe.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE '%%documents_document%%' AND pid <> pg_backend_pid()"
            ).fetchone()
            if waiting:
                return waiting[0]
            time.sleep(0.05)
    raise AssertionError("the worker never reached the held document")


@contextmanager
def in_flight(worker, name: str):
    """A document whose task is in flight for the whole block: queued with its row held
    (document_held), the block starts once the worker's task waits on the row. Yields the
    document and the waiting session's backend pid; leaving the block lets the task go on."""
    owner = UserFactory()
    text = "\n\n".join(f"Paragraph {n} of the safety report on ladders." for n in range(300))
    document, _ = document_create(
        collection=CollectionFactory(owner=owner),
        owner=owner,
        upload=ContentFile(text.encode(), name=name),
        enqueue=False,
    )
    with document_held(document.pk):
        documents_enqueue(document_ids=[document.pk])
        yield document, worker_waits_on_lock()


def _killed_mid_task(worker, name: str) -> tuple[Document, int]:
    """Kill the pool process whose task holds a document in flight; returns the document once
    settled (by the task's redelivery, to the replacement process) and the killed pid."""
    with in_flight(worker, name) as (document, backend):
        (child,) = worker.pool_children()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        # What the server does by itself once it notices the client is gone, which a session
        # waiting on a lock does only when it gets the lock: its session-level claim on the
        # document would then outlast the redelivery.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    (document,) = documents_settle([document.pk])
    return document, child.pid


def test_a_worker_killed_mid_task_hands_the_document_to_its_replacement(worker):
    """GIVEN a worker whose task holds a document, in flight
    WHEN the pool process running the task is killed outright
    THEN the task is delivered again, to the replacement process, and the document ends
    ready with each passage stored once."""
    document, killed = _killed_mid_task(worker, "long.txt")

    assert document.status == Document.Status.READY, document.error
    assert "exited with 'signal 9 (SIGKILL)'" in worker.log.read_text()
    assert [c.pid for c in worker.pool_children()] != [killed]
    ordinals = list(document.chunks.order_by("ordinal").values_list("ordinal", flat=True))
    assert ordinals == list(range(len(ordinals))) and len(ordinals) > 3


def test_sigterm_lets_the_task_in_flight_finish_even_in_a_replaced_pool_process(worker, settings):
    """GIVEN a worker whose pool process was replaced (the first one killed mid-task), now
    running a task, alive by its probe
    WHEN the worker gets SIGTERM (what `docker stop` sends)
    THEN it finishes that task before it exits: the document is ready on its first try, and
    the probe reports the worker gone. (The replacement was forked by billiard's supervisor
    thread; celery's parent-death signal killed it when that thread stopped at shutdown:
    prodrag.celery's orphan guard.)"""
    _, killed = _killed_mid_task(worker, "first.txt")
    settings.WORKER_ALIVE_FILE = worker.alive_file
    call_command("worker_health")
    try:
        with in_flight(worker, "drills.txt") as (document, _):
            (replacement,) = worker.pool_children()
            assert replacement.pid != killed
            main = psutil.Process(worker.process.pid)
            threads = main.num_threads()
            worker.process.send_signal(signal.SIGTERM)
            # The task stays held until the shutdown is under way (the pool has begun to stop
            # its threads): the stop of its supervisor thread is what killed a replacement.
            deadline = time.monotonic() + 60
            while main.num_threads() >= threads:
                assert time.monotonic() < deadline, "the worker did not begin its shutdown"
                time.sleep(0.05)
        worker.process.wait(timeout=150)
        document.refresh_from_db()
        assert document.status == Document.Status.READY, document.error
        assert document.attempts == 1
        with pytest.raises(CommandError, match="No worker is running"):
            call_command("worker_health")
    finally:
        worker.stop()
        worker.start()


def test_pool_processes_end_with_their_worker(worker):
    """The orphan guard's other half: a worker killed outright takes its pool processes with
    it (they do not go on running tasks nobody will acknowledge)."""
    children = worker.pool_children()
    try:
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=60)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [] and len(gone) == len(children) == 1
    finally:
        worker.stop()
        worker.start()


def test_the_request_id_of_an_upload_reaches_the_worker_s_lines_for_its_task(worker):
    """GIVEN an upload through the API with X-Request-ID
    WHEN the worker ingests it
    THEN its log lines are JSON, and the line of that document carries the request's id, the
    uploader's id and the task's id."""
    owner = UserFactory()
    collection = CollectionFactory(owner=owner)
    response = api_client(owner, scope="write").post(
        "/api/v1/documents/",
        {
            "file": SimpleUploadedFile("gym.md", b"# Gym\n\nOpen at six."),
            "collection": collection.pk,
        },
        HTTP_X_REQUEST_ID="upload-42",
    )
    assert response.status_code == 201, response.content
    (document,) = documents_settle([response.json()["document"]["id"]])
    assert document.status == Document.Status.READY, document.error

    lines = [json.loads(line) for line in worker.log.read_text().splitlines() if line.strip()]
    (ready,) = [
        line for line in lines if line["message"].startswith(f"document {document.pk} ready")
    ]
    assert ready["request_id"] == "upload-42"
    assert ready["user_id"] == owner.pk
    assert len(ready["task_id"]) == 36


def test_the_worker_serves_the_metrics_of_its_pool_processes(worker):
    owner = UserFactory()
    document, _ = document_create(
        collection=CollectionFactory(owner=owner),
        owner=owner,
        upload=ContentFile(b"The library lends laptops for a week.", name="library.txt"),
    )
    (document,) = documents_settle([document.pk])
    assert document.status == Document.Status.READY, document.error

    text = httpx.get(worker.metrics_url, timeout=10).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    processed = ("task", "documents.tasks.documents_process"), ("outcome", "success")
    assert samples[("prodrag_worker_tasks_total", tuple(sorted(processed)))] >= 1
    assert samples[("prodrag_ingestion_stage_seconds_count", (("stage", "embed"),))] >= 1


def test_beat_shows_life_while_it_schedules_and_not_after(worker, settings, tmp_path):
    """Celery beat, started as docker-compose starts it, passes its probe while it runs and
    fails it once stopped."""
    settings.BEAT_ALIVE_FILE = tmp_path / "beat.alive"
    beat = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "prodrag", "beat",
         "--schedule", str(tmp_path / "schedule"), "--loglevel", "INFO"],
        env={**worker.env, "PRODRAG_BEAT_ALIVE_FILE": str(settings.BEAT_ALIVE_FILE)},
        cwd=django_settings.BASE_DIR,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not settings.BEAT_ALIVE_FILE.exists():
            assert beat.poll() is None and time.monotonic() < deadline, "beat never ticked"
            time.sleep(0.2)
        call_command("worker_health", beat=True)
    finally:
        beat.send_signal(signal.SIGTERM)
        beat.wait(timeout=60)
    with pytest.raises(CommandError, match="No beat is running"):
        call_command("worker_health", beat=True)
