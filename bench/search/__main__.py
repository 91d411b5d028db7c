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
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.selectors import group_principal, user_principal  # noqa: E402
from documents.models import Chunk, Collection, Document, embedding_index  # noqa: E402
from retrieval import selectors  # noqa: E402
from retrieval.selectors import passages_search  # noqa: E402

FRACTIONS = (1.0, 0.1, 0.01, 0.001)
WARM_UP = 5
PER_DOCUMENT = 10
WORDS_PER_CHUNK = 40
BASE = 2_000
# Per-dimension noise: `copies` keep a cosine of about 0.75 to their abstract, `blends` about
# 0.98 to their mix.
NOISE = {"copies": 0.045, "blends": 0.01}


def main() -> None:
    args = ARGS
    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(7)
    queries = [
        json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").open() if line.strip()
    ]
    readers = _readers()
    if args.reload or Chunk.objects.count() != args.chunks:
        _load(args.chunks, rng, _base_passages(args.corpus), readers, args.data)
        _indexes_build()
    _report_sizes()
    for fraction, reader in readers.items():
        _measure(fraction, reader, queries, args.queries)


def _base_passages(corpus: Path) -> tuple[list[list[str]], np.ndarray]:
    """The words and vectors of the first BASE SciFact abstracts."""
    rows = []
    with (corpus / "corpus.jsonl").open() as lines:
        for line in lines:
            row = json.loads(line)
            rows.append(f"{row['title']}\n{row['text']}")
            if len(rows) == BASE:
                break
    started = time.monotonic()
    vectors = selectors.embedder().embed(rows)
    print(f"embedded {len(rows):,} base passages in {time.monotonic() - started:.0f} s")
    return [text.split() for text in rows], vectors


def _readers() -> dict[float, User]:
    readers = {}
    for fraction in FRACTIONS:
        name = f"bench-{fraction:g}"
        group, _ = Group.objects.get_or_create(name=name)
        user, _ = User.objects.get_or_create(username=name)
        user.groups.add(group)
        readers[fraction] = user
    return readers


def _load(count: int, rng, base, readers: dict[float, User], data: str) -> None:
    started = time.monotonic()
    owner, _ = User.objects.get_or_create(username="bench-owner")
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE documents_chunkembedding, documents_chunk, documents_documentversion, "
            "documents_document, documents_collection CASCADE"
        )
        _indexes_drop(cursor)
    collection = Collection.objects.create(name="synthetic", owner=owner)
    groups = {f: group_principal(Group.objects.get(name=f"bench-{f:g}").pk) for f in FRACTIONS}
    documents = count // PER_DOCUMENT
    base_words, base_vectors = base
    model = selectors.embedder().model
    draw = rng.random(documents)
    with connection.cursor() as cursor:
        # Documents, each with one version, through COPY (the ingestion pipeline is measured
        # by bench.ingest; here only the search side matters).
        with cursor.copy(
            "COPY documents_document (id, collection_id, owner_id, open_to_staff, "
            "read_principals, created_at, updated_at, title, source, external_id, "
            "content_type, sha256, size, language, metadata, status, error, status_changed_at, "
            "properties, attempts, progress, stage_seconds) FROM STDIN"
        ) as copy:
            for pk in range(1, documents + 1):
                principals = [user_principal(owner.pk)] + [
                    groups[f] for f in FRACTIONS if draw[pk - 1] < f
                ]
                copy.write_row(
                    (pk, collection.pk, owner.pk, False, "{" + ",".join(map(str, principals)) + "}",
                     "2026-01-01", "2026-01-01", f"Document {pk}", f"doc-{pk}", "",
                     "text/plain", f"{pk:064x}", 0, "en", "{}", "ready", "", "{}", "{}", 0, 100,
                     "{}")
                )  # fmt: skip
        cursor.execute(
            "INSERT INTO documents_documentversion (id, document_id, number, file, sha256, "
            "size, content_type, created_at, embedding_model, embedding_dimensions, text, "
            "chunking) SELECT id, id, 1, 'synthetic.txt', sha256, 0, 'text/plain', "
            "created_at, %s, 384, '', '{}' FROM documents_document",
            [model],
        )
        cursor.execute(
            "UPDATE documents_document SET current_version_id = id, indexed_version_id = id"
        )
        cursor.execute(
            "CREATE UNLOGGED TABLE IF NOT EXISTS bench_staging (id bigint, document_id bigint, "
            "ordinal int, text text, embedding vector)"
        )
        batch = 100_000
        for start in range(0, count, batch):
            cursor.execute("TRUNCATE bench_staging")
            ids = np.arange(start, min(start + batch, count))
            picks = rng.integers(0, len(base_words), len(ids))
            others = rng.integers(0, len(base_words), len(ids))
            offsets = rng.random((len(ids), 2))
            if data == "blends":
                weight = rng.random((len(ids), 1))
                vectors = weight * base_vectors[picks] + (1 - weight) * base_vectors[others]
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                texts = [
                    _window(base_words[a], offset[0], WORDS_PER_CHUNK // 2)
                    + " "
                    + _window(base_words[b], offset[1], WORDS_PER_CHUNK // 2)
                    for a, b, offset in zip(picks, others, offsets, strict=True)
                ]
            else:
                vectors = base_vectors[picks]
                texts = [
                    _window(base_words[a], offset[0], WORDS_PER_CHUNK)
                    for a, offset in zip(picks, offsets, strict=True)
                ]
            vectors = vectors + rng.normal(scale=NOISE[data], size=(len(ids), 384))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            with cursor.copy(
                "COPY bench_staging (id, document_id, ordinal, text, embedding) FROM STDIN"
            ) as copy:
                for index, pk in enumerate(ids):
                    copy.write_row(
                        (
                            pk + 1,
                            pk // PER_DOCUMENT + 1,
                            pk % PER_DOCUMENT,
                            texts[index],
                            "[" + ",".join(f"{v:.5f}" for v in vectors[index]) + "]",
                        )
                    )
            cursor.execute(
                "INSERT INTO documents_chunk (id, document_id, version_id, ordinal, text, "
                "token_count, heading_path, search_vector, metadata) SELECT id, document_id, "
                "document_id, ordinal, text, 60, '{}', setweight(to_tsvector(%s::regconfig, "
                "'Document ' || document_id), 'A') || setweight(to_tsvector(%s::regconfig, "
                "text), 'D'), '{}' FROM bench_staging",
                [settings.FTS_CONFIG, settings.FTS_CONFIG],
            )
            cursor.execute(
                "INSERT INTO documents_chunkembedding (chunk_id, document_id, embedding_model, "
                "embedding) SELECT id, document_id, %s, embedding FROM bench_staging",
                [model],
            )
            print(f"  loaded {ids[-1] + 1:,} passages", flush=True)
        cursor.execute("DROP TABLE bench_staging")
        for table in ("documents_document", "documents_documentversion", "documents_chunk"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
    print(
        f"load: {count:,} passages in {documents:,} documents, {time.monotonic() - started:.0f} s"
    )


def _window(words: list[str], offset: float, size: int) -> str:
    first = int(offset * max(1, len(words) - size))
    return " ".join(words[first : first + size])


def _indexes_drop(cursor) -> None:
    index = embedding_index(model_name=selectors.embedder().model, dimensions=384)
    cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
    cursor.execute("DROP INDEX IF EXISTS chunk_search_vector")


def _indexes_build() -> None:
    model = selectors.embedder().model
    index = embedding_index(model_name=model, dimensions=384)
    parameters = ", ".join(index.get_with_params())  # the product's own m and ef_construction
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '6GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
        for name, sql in (
            (
                "HNSW vector(384)",
                f"CREATE INDEX {index.name} ON documents_chunkembedding USING hnsw "
                f"((embedding::vector(384)) vector_cosine_ops) WITH ({parameters}) "
                "WHERE embedding_model = %s",
            ),
            (
                "GIN full text",
                "CREATE INDEX chunk_search_vector ON documents_chunk USING gin (search_vector)",
            ),
        ):
            started = time.monotonic()
            cursor.execute(sql, [model] if "%s" in sql else [])
            print(f"index build, {name}: {time.monotonic() - started:.0f} s", flush=True)
        cursor.execute("ANALYZE")


def _report_sizes() -> None:
    index = embedding_index(model_name=selectors.embedder().model, dimensions=384)
    with connection.cursor() as cursor:
        for label, name in (
            ("HNSW vector(384)", index.name),
            ("GIN full text", "chunk_search_vector"),
            ("postings table", "retrieval_posting"),
            ("postings index", "retrieval_posting_pkey"),
            ("chunk table", "documents_chunk"),
            ("vector table", "documents_chunkembedding"),
        ):
            cursor.execute("SELECT pg_size_pretty(pg_relation_size(%s::regclass))", [name])
            print(f"size, {label}: {cursor.fetchone()[0]}")


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
