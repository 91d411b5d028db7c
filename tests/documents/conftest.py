import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from tests.processes import free_port, process_env

# The worker's own limits, small enough for test files to cross them.
WORKER_LIMITS = {"PRODRAG_MAX_FILE_BYTES": "2000000", "PRODRAG_MAX_UNZIPPED_BYTES": "20000000"}


class Worker:
    """A real `celery worker` process on the test database (tasks, rows and files shared with
    the test through the embedded server and a common media directory)."""

    def __init__(self, env: dict[str, str], log: Path, *, name: str = "celery", queues=()) -> None:
        self.env = env
        self.log = log
        self.name = name
        self.queues = queues
        self.alive_file = Path(env["PRODRAG_WORKER_ALIVE_FILE"])
        self.metrics_url = f"http://127.0.0.1:{env['PRODRAG_WORKER_METRICS_PORT']}/metrics"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log.write_text("")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "prodrag",
                "worker",
                "--concurrency",
                "1",
                "--hostname",
                f"{self.name}@%h",
                *(["--queues", ",".join(self.queues)] if self.queues else []),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--logfile",
                str(self.log),
            ],
            env=self.env,
            cwd=settings.BASE_DIR,
        )
        deadline = time.monotonic() + 90
        while "ready." not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def pool_children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def worker_media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("worker-media")


def worker_env(directory: Path, media: Path) -> dict[str, str]:
    """A worker's environment: files of its own in `directory`, uploads read from `media`."""
    (directory / "prometheus").mkdir()
    return process_env(
        PRODRAG_MEDIA_ROOT=str(media),
        PRODRAG_WORKER_ALIVE_FILE=str(directory / "worker.alive"),
        # Pool processes write their samples there; the main process serves them on the port.
        PROMETHEUS_MULTIPROC_DIR=str(directory / "prometheus"),
        PRODRAG_WORKER_METRICS_PORT=str(free_port()),
        **WORKER_LIMITS,
    )


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, worker_media, tmp_path_factory):
    directory = tmp_path_factory.mktemp("worker")
    worker = Worker(worker_env(directory, worker_media), directory / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(celery_worker_process, settings, worker_media, transactional_db):
    """The worker, with this test's uploads stored where the worker reads them."""
    settings.MEDIA_ROOT = worker_media
    return celery_worker_process


def documents_settle(ids, *, timeout: float = 180):
    """Wait until none of the documents is still queued or in progress; return them."""
    from documents.models import Document

    finished = {Document.Status.READY, Document.Status.FAILED}
    deadline = time.monotonic() + timeout
    while True:
        documents = list(Document.objects.filter(pk__in=ids).order_by("pk"))
        if all(document.status in finished for document in documents):
            return documents
        if time.monotonic() > deadline:
            states = {document.source: document.status for document in documents}
            raise AssertionError(f"documents did not finish in {timeout} s: {states}")
        time.sleep(0.3)


class QueuedTasks(list):
    """The document ids of each ingestion task queued, in order; `queues`: where each went."""

    def __init__(self):
        super().__init__()
        self.queues: list[str] = []

    def record(self, args, queue, **options):
        (document_ids,) = args
        self.append(document_ids)
        self.queues.append(queue)


@pytest.fixture
def queued(monkeypatch) -> QueuedTasks:
    """Ingestion tasks are recorded here instead of being sent to the broker."""
    tasks = QueuedTasks()
    monkeypatch.setattr("documents.tasks.documents_process.apply_async", tasks.record)
    return tasks
