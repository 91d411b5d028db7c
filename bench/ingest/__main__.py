"""Ingestion throughput: the SciFact corpus through a real worker, against raw encoding.

    .venv/bin/python -m bench.ingest [--corpus DIR] [--limit N]

Loads the corpus with import_beir's service into a fresh collection on a separate embedded
database (var/bench-pgdata), lets one real Celery worker process it (started as `make up`
starts it: PRODRAG_WORKER_CONCURRENCY processes, by default one per CPU, sharing the CPUs as
torch threads; tasks queued one by one while the upload goes on, as import_beir does), and times
from the first upload to the last document ready. Then, with the worker stopped, it encodes
exactly the texts the worker embedded with SentenceTransformer.encode (same model, same batch
size) and prints both rates, their ratio, and the worker's peak memory (resident set of the
worker and its children, sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PRODRAG_PGDATA", str(ROOT / "var" / "bench-pgdata"))
os.environ.setdefault("PRODRAG_MEDIA_ROOT", str(ROOT / "var" / "bench-media"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.management import call_command  # noqa: E402

from accounts.models import User  # noqa: E402
from documents.embedding import embedder  # noqa: E402
from documents.models import Chunk, Collection, Document  # noqa: E402
from documents.services.loading import LoadReport, beir_corpus_load  # noqa: E402
from documents.services.uploads import document_create  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/datasets/scifact")
    parser.add_argument("--limit", type=int, help="Only the first N rows (a quick check).")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    owner, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True})
    collection = Collection.objects.create(name=f"scifact-{time.time_ns()}", owner=owner)
    corpus = args.corpus / "corpus.jsonl"
    if args.limit:
        subset = ROOT / "var" / "bench-corpus.jsonl"
        with corpus.open() as rows:
            subset.write_text("".join(row for _, row in zip(range(args.limit), rows, strict=False)))
        corpus = subset

    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "prodrag",
            "worker",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=os.environ,
    )
    peak = _PeakMemory(worker.pid)
    peak.start()
    try:
        _warm_up(owner)
        started = time.monotonic()
        report = LoadReport(queue=True)
        beir_corpus_load(collection=collection, owner=owner, corpus=corpus, report=report)
        uploaded = time.monotonic() - started
        report.queue_rest()
        documents = Document.objects.filter(collection=collection)
        _wait(documents)
        elapsed = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait()
        peak.stop()

    chunks = Chunk.objects.filter(document__collection=collection)
    count, failed = chunks.count(), documents.filter(status="failed").count()
    titles = dict(documents.values_list("pk", "title"))
    texts = [
        "\n".join(part for part in (titles[doc], " > ".join(path), text) if part)
        for doc, path, text in chunks.order_by("document", "ordinal").values_list(
            "document_id", "heading_path", "text"
        )
    ]
    model = embedder().transformer
    encode_started = time.monotonic()
    model.encode(texts, batch_size=settings.EMBEDDING_BATCH_SIZE, normalize_embeddings=True)
    encode = time.monotonic() - encode_started

    n = len(report.document_ids)
    print(
        f"documents: {n} ({failed} failed), chunks: {count}; worker processes: "
        f"{settings.CELERY_WORKER_CONCURRENCY}; raw encode torch threads: {_threads()}"
    )
    print(f"upload (import_beir service): {uploaded:.1f} s")
    print(
        f"end to end: {elapsed:.1f} s = {n / elapsed:.1f} documents/s, "
        f"{count / elapsed:.1f} chunks/s"
    )
    print(
        f"raw SentenceTransformer.encode of the same {count} texts: {encode:.1f} s = "
        f"{count / encode:.1f} chunks/s"
    )
    print(f"end to end / raw encode throughput: {encode / elapsed:.2f}")
    print(f"worker peak memory (RSS, worker + children): {peak.peak / 2**20:.0f} MiB")


def _wait(documents) -> None:
    while documents.filter(status__in=["pending", "parsing", "chunking", "embedding"]).exists():
        time.sleep(0.5)


def _warm_up(owner: User) -> None:
    """A small document per worker process first (each its own task, queued at once, so each
    process takes one while the others load), so that start-up and model loading (seconds,
    once per process) are not counted as throughput."""
    collection = Collection.objects.create(name=f"warm-up-{time.time_ns()}", owner=owner)
    for number in range(settings.CELERY_WORKER_CONCURRENCY):
        document_create(
            collection=collection,
            owner=owner,
            upload=ContentFile(f"Warm up {number}.".encode(), name=f"warm-{number}.txt"),
        )
    _wait(Document.objects.filter(collection=collection))


def _threads() -> int:
    import torch

    return torch.get_num_threads()


class _PeakMemory(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        self.finished.set()
        self.join()


if __name__ == "__main__":
    main()
