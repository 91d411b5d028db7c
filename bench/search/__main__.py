"""Search latency and recall at scale: synthetic passages, the real retrieval statement.

    .venv/bin/python -m bench.search [--data blends|copies] [--chunks N] [--queries N] [--reload]

On a separate embedded database (var/bench-search-DATA-pgdata), loads `--chunks` synthetic
passages (10 per document) made from real ones: the first 2,000 SciFact abstracts are embedded
with the bundled model, and each synthetic passage is built from them in one of two ways
(`--data`):
- `blends` (default): a random mix of two abstracts, w * a + (1 - w) * b with w uniform in
  [0, 1], plus a little Gaussian noise (cosine about 0.98 to the unnoised mix), and 20 words of
  each text. Passages spread over a continuum between real embeddings, as passages of a
  real corpus do: near neighbours differ by graded amounts.
- `copies`: one abstract, perturbed with strong Gaussian noise (cosine about 0.75 to the
  original; copies of one abstract about 0.57 to each other), and a 40-word window of its
  text. 500 noisy copies of each abstract: the ten nearest passages of a query are ten of
  the hundreds of copies of one abstract, told apart by noise alone, a worst case for any
  approximate index.
Queries are SciFact's own test queries, so query vectors come from the same distribution as
the passages'. Then it builds the HNSW index and the GIN index, timing each.

Readers: one user per visibility fraction (100%, 10%, 1%, 0.1% of the documents, granted
through a group). For each fraction, after WARM_UP searches with queries it does not measure
(the last ones of the file), it runs permission-filtered searches (`passages_search`, k=10)
and prints:
- p50/p95 latency of each mode (hybrid, dense, full text) with the query embedding computed
  (a query text never seen before), and of hybrid without it (the same query again: the
  embedding cache answers);
- recall@10 of the vector ranking against exact search (the same statement forced onto its
  exact path);
- on how many queries full text's top 10 equals exhaustive BM25's (the same statement with
  `SEARCH_POSTINGS=False`, which scores every visible passage that has a query word): the
  same scores, and the same passages above the tenth score.
The postings are maintained by the chunk table's triggers as the passages are loaded.

A loaded database is reused when it has the requested size (indexes are then not rebuilt
and their build times not printed); `--reload` starts over.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARSER = argparse.ArgumentParser()
PARSER.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/datasets/scifact")
PARSER.add_argument("--chunks", type=int, default=1_000_000)
PARSER.add_argument("--queries", type=int, default=50)
PARSER.add_argument("--data", choices=("blends", "copies"), default="blends")
PARSER.add_argument("--reload", action="store_true")
ARGS = PARSER.parse_args()
os.environ.setdefault("PRODRAG_PGDATA", str(ROOT / "var" / f"bench-search-{ARGS.data}-pgdata"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402

from accounts.models import User  # noqa: E402
from bench.corpus import (  # noqa: E402
    base_passages,
    corpus_load,
    indexes_build,
    readers_ensure,
    sizes_report,
)
from documents.models import Chunk, Document  # noqa: E402
from retrieval import selectors  # noqa: E402
from retrieval.selectors import passages_search  # noqa: E402

WARM_UP = 5


def main() -> None:
    args = ARGS
    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(7)
    queries = [
        json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").open() if line.strip()
    ]
    readers = readers_ensure()
    if args.reload or Chunk.objects.count() != args.chunks:
        corpus_load(args.chunks, rng, base_passages(args.corpus), readers, args.data)
        indexes_build()
    sizes_report()
    for fraction, reader in readers.items():
        _measure(fraction, reader, queries, args.queries)


def _measure(fraction: float, reader: User, queries: list[str], count: int) -> None:
    visible = Document.objects.visible_to(reader).count()
    # The fraction before read other pages into memory: a few searches with queries that are
    # not measured bring this reader's back, so that the first measured searches do not pay
    # for it.
    for text in queries[-WARM_UP:]:
        passages_search(user=reader, query=text, k=10)
    timings: dict[str, list[float]] = {mode: [] for mode in ("hybrid", "dense", "fulltext")}
    warm, recall, exact_text = [], [], []
    for text in queries[:count]:
        for mode in timings:
            selectors._query_vector_cached.cache_clear()
            started = time.monotonic()
            passages_search(user=reader, query=text, k=10, mode=mode)
            timings[mode].append((time.monotonic() - started) * 1000)
        started = time.monotonic()
        passages_search(user=reader, query=text, k=10)
        warm.append((time.monotonic() - started) * 1000)
    # Then the references, which read far more than a search does (and would evict its pages
    # between the timed searches).
    for text in queries[:count]:
        approximate = passages_search(user=reader, query=text, k=10, mode="dense").passages
        with override_settings(SEARCH_EXACT_BELOW=10**9, SEARCH_VECTOR_EXACT_BELOW=10**9):
            exact = passages_search(user=reader, query=text, k=10, mode="dense").passages
        found = {p.chunk_id for p in approximate} & {p.chunk_id for p in exact}
        recall.append(len(found) / max(1, len(exact)))
        ranked = passages_search(user=reader, query=text, k=10, mode="fulltext").passages
        # The same statement scoring every visible passage that has a query word.
        with override_settings(SEARCH_POSTINGS=False):
            scored = passages_search(user=reader, query=text, k=10, mode="fulltext").passages
        exact_text.append(_same_ranking(ranked, scored))
    paths = (
        "vector " + ("exact" if visible <= settings.SEARCH_VECTOR_EXACT_BELOW else "HNSW"),
        "full text " + ("exact" if visible <= settings.SEARCH_EXACT_BELOW else "postings"),
    )
    figures = ", ".join(
        f"{mode} {_p(values, 50):.1f}/{_p(values, 95):.1f}" for mode, values in timings.items()
    )
    print(
        f"visibility {fraction:>6.1%} ({visible:,} documents; {', '.join(paths)}): k=10 "
        f"p50/p95 ms with query embedding: {figures}; hybrid without embedding "
        f"{_p(warm, 50):.1f}/{_p(warm, 95):.1f}; vector recall@10 vs exact "
        f"{statistics.mean(recall):.3f}; full-text top 10 = exhaustive BM25 on "
        f"{sum(exact_text)}/{len(exact_text)} queries",
        flush=True,
    )


def _same_ranking(found, reference) -> bool:
    """The same top 10 by score, ties aside: equal scores rank by rank, and the passages
    scoring above the tenth score are the same."""
    scores = [round(p.score, 6) for p in found]
    if scores != [round(p.score, 6) for p in reference]:
        return False
    if not scores:
        return True
    above = scores[-1]
    return {p.chunk_id for p in found if round(p.score, 6) > above} == {
        p.chunk_id for p in reference if round(p.score, 6) > above
    }


def _p(values: list[float], percentile: int) -> float:
    return statistics.quantiles(values, n=100)[percentile - 1] if percentile < 100 else max(values)


if __name__ == "__main__":
    main()
