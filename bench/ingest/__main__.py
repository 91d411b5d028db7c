"""Ingestion throughput: the SciFact corpus through a real worker, against raw encoding.

    .venv/bin/python -m bench.ingest [--corpus DIR] [--limit N]

Loads the corpus with import_beir's service into a fresh collection on a separate embedded
database (var/bench-pgdata), lets one real Celery worker process it (started as `make up`
starts it: PRODRAG_WORKER_CONCURRENCY processes, by default one per CPU, sharing the CPUs as
torch threads; tasks queued one by one while the upload goes on, as import_beir does), and times
from the first upload to the last document ready. Then, with the worker stopped, it encodes
exactly the texts the worker embedded with SentenceTransformer.encode (same model, same batch
size, torch's default threads) and prints both rates, their ratio, how close the stored
vectors are to PyTorch's (cosine), the worker's peak memory (resident set of the worker and
its children, sampled every 0.2 s) and where the worker's time went (stage seconds).
"""

from __future__ import annotations

import argparse
import contextlib
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

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.management import call_command  # noqa: E402

from accounts.models import User  # noqa: E402
from documents.embedding import embedder  # noqa: E402
from documents.embedding.onnx import cpu_features  # noqa: E402
from documents.models import Chunk, Collection, Document, DocumentVersion  # noqa: E402
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
        cpu = _CpuSeconds(worker=worker.pid)
        started = time.monotonic()
        report = LoadReport(queue=True)
        beir_corpus_load(collection=collection, owner=owner, corpus=corpus, report=report)
        uploaded = time.monotonic() - started
        report.queue_rest()
        documents = Document.objects.filter(collection=collection)
        _wait(documents)
        elapsed = time.monotonic() - started
        used = cpu.since()
    finally:
        worker.terminate()
        worker.wait()
        peak.stop()

    chunks = Chunk.objects.filter(document__collection=collection).order_by("document", "ordinal")
    count, failed = chunks.count(), documents.filter(status="failed").count()
    titles = dict(documents.values_list("pk", "title"))
    texts = [
        "\n".join(part for part in (titles[doc], " > ".join(path), text) if part)
        for doc, path, text in chunks.values_list("document_id", "heading_path", "text")
    ]
    stored = np.array(list(chunks.values_list("vector__embedding", flat=True)), dtype=np.float32)
    model = embedder().transformer
    encode_started = time.monotonic()
    reference = model.encode(
        texts, batch_size=settings.EMBEDDING_BATCH_SIZE, normalize_embeddings=True
    )
    encode = time.monotonic() - encode_started
    cosines = (stored * reference).sum(axis=1)

    n = len(report.document_ids)
    processes = settings.CELERY_WORKER_CONCURRENCY
    made_by = sorted(
        set(
            DocumentVersion.objects.filter(document__collection=collection).values_list(
                "embedding_runtime", "embedding_quantize"
            )
        )
    )
    print(
        f"documents: {n} ({failed} failed), chunks: {count}; worker processes: {processes}, "
        f"embedded by (runtime, quantize): {made_by}; CPU: {cpu_features()}; raw encode torch "
        f"threads: {_threads()}"
    )
    print(f"upload (import_beir service): {uploaded:.1f} s")
    print(
        f"end to end: {elapsed:.1f} s = {n / elapsed:.1f} documents/s, "
        f"{count / elapsed:.1f} chunks/s"
    )
    print(
        f"raw SentenceTransformer.encode of the same {count} texts (batch "
        f"{settings.EMBEDDING_BATCH_SIZE}): {encode:.1f} s = {count / encode:.1f} chunks/s"
    )
    print(f"end to end / raw encode throughput: {encode / elapsed:.2f}")
    print(
        f"stored vectors against PyTorch's: mean cosine {cosines.mean():.4f}, "
        f"minimum {cosines.min():.4f}"
    )
    print(f"worker peak memory (RSS, worker + children): {peak.peak / 2**20:.0f} MiB")
    _profile(documents, busy=elapsed * processes)
    available = elapsed * (os.cpu_count() or 1)
    shares = (f"{name} {value:.0f} s ({value / available:.0%})" for name, value in used.items())
    print(f"CPU time over {available:.0f} CPU-seconds: " + ", ".join(shares))


def _profile(documents, *, busy: float) -> None:
    """Where the worker processes' time went: each document's stage seconds (a stage run for
    a task's documents together is shared among them by passages), summed, against the
    processes' time in all; the rest is queueing, claiming and status updates."""
    totals: dict[str, float] = {}
    for seconds in documents.values_list("stage_seconds", flat=True):
        for stage, value in seconds.items():
            totals[stage] = totals.get(stage, 0) + value
    totals["other"] = busy - sum(totals.values())
    shares = (f"{stage} {value:.0f} s ({value / busy:.0%})" for stage, value in totals.items())
    print(f"profile over {busy:.0f} process-seconds: " + ", ".join(shares))


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


class _CpuSeconds:
    """CPU time (user and system) since creation of the worker (its processes), the database
    server (the postmaster, its live backends and those it has reaped) and this process
    alone, which uploads (the worker is its child)."""

    def __init__(self, *, worker: int) -> None:
        postmaster = int((Path(settings.PGDATA) / "postmaster.pid").read_text().split()[0])
        self.processes = {
            "worker": psutil.Process(worker),
            "database": psutil.Process(postmaster),
            "upload": psutil.Process(),
        }
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        totals = {}
        for name, process in self.processes.items():
            total = 0.0
            members = [process] if name == "upload" else [process, *process.children(True)]
            for member in members:
                with contextlib.suppress(psutil.Error):
                    times = member.cpu_times()
                    total += times.user + times.system
                    if member is process and name != "upload":
                        total += times.children_user + times.children_system
            totals[name] = total
        return totals

    def since(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self.start[name] for name in now}


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
