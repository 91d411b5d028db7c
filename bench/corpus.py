"""The synthetic corpus the search and load benchmarks share: passages made from real
SciFact abstracts and their real embeddings (see bench.search's docstring for the two kinds,
`blends` and `copies`), loaded through COPY, and readers who see a fraction of it through a
group each. Import after django.setup()."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection

from accounts.models import User
from accounts.selectors import group_principal, user_principal
from documents.models import Collection, embedding_index
from retrieval import selectors

FRACTIONS = (1.0, 0.1, 0.01, 0.001)
PER_DOCUMENT = 10
WORDS_PER_CHUNK = 40
BASE = 2_000
# Per-dimension noise: `copies` keep a cosine of about 0.75 to their abstract, `blends` about
# 0.98 to their mix.
NOISE = {"copies": 0.045, "blends": 0.01}


def base_passages(corpus: Path) -> tuple[list[list[str]], np.ndarray]:
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


def readers_ensure() -> dict[float, User]:
    readers = {}
    for fraction in FRACTIONS:
        name = f"bench-{fraction:g}"
        group, _ = Group.objects.get_or_create(name=name)
        user, _ = User.objects.get_or_create(username=name)
        user.groups.add(group)
        readers[fraction] = user
    return readers


def corpus_load(count: int, rng, base, readers: dict[float, User], data: str) -> None:
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
            "size, content_type, created_at, embedding_model, embedding_dimensions, "
            "embedding_runtime, embedding_quantize, text, chunking) "
            "SELECT id, id, 1, 'synthetic.txt', sha256, 0, 'text/plain', "
            "created_at, %s, 384, %s, %s, '', '{}' FROM documents_document",
            [model, selectors.embedder().runtime, selectors.embedder().quantize],
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


def indexes_build() -> None:
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


def sizes_report() -> None:
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
