"""The local model's runtimes side by side, on the same texts, in one run.

    .venv/bin/python -m bench.embedding [--corpus DIR] [--limit N]

Embeds the first N SciFact passages (title and text, as ingestion does) with PyTorch
(`SentenceTransformer.encode`, batch PRODRAG_EMBEDDING_BATCH_SIZE, torch's default threads):
the reference. Then with ONNX Runtime, each variant (`none`, `int8`) made as the app makes
it: in one process with the default threads, in one process with one thread, and in one
single-threaded process per CPU side by side (as the worker runs); the int8 variant also at
other batch sizes. Prints passages per second, the ratio to PyTorch, the vectors' cosine to
PyTorch's (mean, minimum), how much of what ran was padding with and without sorting by
length, and the latency of single queries (SciFact's test queries, one at a time).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.embedding.process import local_embedder, timed_in_one_thread  # noqa: E402
from documents.embedding import LocalEmbedder  # noqa: E402
from documents.embedding.onnx import cpu_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/datasets/scifact")
    parser.add_argument("--limit", type=int, default=512)
    args = parser.parse_args()
    texts = _passages(args.corpus / "corpus.jsonl", args.limit)
    queries = [json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").open()][:300]
    directory = Path(tempfile.mkdtemp(prefix="bench-embedding-"))
    threads, cpus = torch.get_num_threads(), os.cpu_count() or 1
    batch = settings.EMBEDDING_BATCH_SIZE
    print(f"{len(texts)} passages; CPU: {cpu_features()}, {cpus} CPUs; torch threads {threads}")

    torch_embedder = local_embedder("torch", "none", directory, batch)
    reference, seconds = _timed(torch_embedder, texts)
    base = len(texts) / seconds
    print(f"torch, batch {batch}, {threads} threads: {base:.1f} passages/s (the reference)")
    _padding(torch_embedder, texts, batch)

    for quantize in ("none", "int8"):
        made = local_embedder("onnx", quantize, directory, batch)
        assert made.quantize == quantize, made.describe()
        vectors, seconds = _timed(made, texts)
        cosines = (vectors * reference).sum(axis=1)
        rate = len(texts) / seconds
        print(
            f"onnx {quantize}, batch {batch}, {threads} threads: {rate:.1f} passages/s "
            f"({rate / base:.2f}x); cosine to torch: mean {cosines.mean():.4f}, "
            f"minimum {cosines.min():.4f}"
        )
        sizes = (16, 32, batch, 128) if quantize == "int8" else (batch,)
        for size in dict.fromkeys(sizes):
            rate = _processes(quantize, directory, size, texts, 1)
            print(
                f"onnx {quantize}, batch {size}, 1 thread: {rate:.1f} passages/s "
                f"({rate / base:.2f}x)"
            )
        rate = _processes(quantize, directory, batch, texts, cpus)
        print(
            f"onnx {quantize}, batch {batch}, {cpus} processes of 1 thread: {rate:.1f} "
            f"passages/s ({rate / base:.2f}x)"
        )

    for name, made in (
        ("torch", torch_embedder),
        ("onnx none", local_embedder("onnx", "none", directory, batch)),
        ("onnx int8", local_embedder("onnx", "int8", directory, batch)),
    ):
        _latency(name, made, queries, threads)


def _passages(corpus: Path, limit: int) -> list[str]:
    rows = [json.loads(line) for line, _ in zip(corpus.open(), range(limit), strict=False)]
    return ["\n".join(part for part in (row["title"], row["text"]) if part) for row in rows]


def _timed(embedder: LocalEmbedder, texts: list[str]) -> tuple[np.ndarray, float]:
    embedder.embed(texts[:16])  # first-call allocations
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    return vectors, time.perf_counter() - started


def _padding(embedder: LocalEmbedder, texts: list[str], batch: int) -> None:
    """Share of the tokens run that are padding, batches in the texts' order and sorted."""
    tokenizer, limit = embedder.transformer.tokenizer, embedder.transformer.max_seq_length
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=limit).input_ids]

    def padded(order: list[int]) -> int:
        batches = [order[start : start + batch] for start in range(0, len(order), batch)]
        return sum(len(part) * max(lengths[index] for index in part) for part in batches)

    real = sum(lengths)
    in_order = padded(list(range(len(texts))))
    by_length = padded(sorted(range(len(texts)), key=lengths.__getitem__))
    print(
        f"padding at batch {batch}: {1 - real / in_order:.0%} of the tokens run in the texts' "
        f"order, {1 - real / by_length:.0%} sorted by length (mean length {real / len(texts):.0f} "
        f"tokens)"
    )


def _processes(quantize: str, directory: Path, batch: int, texts: list[str], count: int) -> float:
    """Passages per second of `count` single-threaded processes, each embedding its share."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(count + 1), context.Queue()
    shares = [texts[index::count] for index in range(count)]
    workers = [
        context.Process(
            target=timed_in_one_thread, args=(quantize, str(directory), batch, share, start, out)
        )
        for share in shares
    ]
    for worker in workers:
        worker.start()
    start.wait()
    longest = max(out.get() for _ in workers)
    for worker in workers:
        worker.join()
    return len(texts) / longest


def _latency(name: str, embedder: LocalEmbedder, queries: list[str], threads: int) -> None:
    embedder.embed(queries[:5])
    times = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed([query])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(
        f"query embedding, {name}, {threads} threads: p50 {statistics.median(times):.1f} ms, "
        f"p95 {times[int(0.95 * len(times))]:.1f} ms ({len(times)} queries)"
    )


if __name__ == "__main__":
    main()
