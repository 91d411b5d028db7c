"""Search: the passages a user may read that best answer a query."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections, transaction
from django.db.models import Count

from accounts.pii import pii_mask
from accounts.replicas import reading_alias, replica_reads
from accounts.selectors import Principals, user_principals
from core import metrics
from core.admission import search_admitted
from core.tracing import tracer
from documents.embedding import EmbeddingError, EmbeddingUnavailable, embedder
from documents.selectors import documents_embedded_otherwise
from retrieval.expansion import FEEDBACK_PASSAGES, FEEDBACK_TERMS, feedback_text, llm_variants
from retrieval.rerank import reranker
from retrieval.statement import Statement, expansion_terms_build, statement_build
from retrieval.types import DENSE, FULLTEXT, HYBRID, Filters, Fusion, Passage, SearchResult

logger = logging.getLogger("prodrag.retrieval")

MODES = (DENSE, FULLTEXT, HYBRID, "hybrid+rerank")
MAX_K = 1000


class SearchError(ValueError):
    """The search cannot run as asked (bad mode, k out of range, no re-ranker configured)."""


FALLBACK_WARNING = (
    "Vector search is unavailable right now (the embedding model or the vector index failed); "
    "these passages come from full-text search alone."
)


class VectorsUnavailable(Exception):
    """The query could not be embedded, or the vector ranking failed in the database."""


# Errors of the embedding provider: the model cannot be loaded or run, the endpoint is down
# or refuses the query.
_EMBEDDING_FAILURES = (EmbeddingError, EmbeddingUnavailable, OSError, RuntimeError)


def fusion_default() -> Fusion:
    return Fusion(
        method=settings.SEARCH_FUSION,
        rrf_k=settings.SEARCH_RRF_K,
        dense_weight=settings.SEARCH_DENSE_WEIGHT,
        fulltext_weight=settings.SEARCH_FULLTEXT_WEIGHT,
        by_collection=True,
    )


def passages_search(
    *,
    user,
    query: str,
    k: int = 10,
    mode: str = HYBRID,
    filters: Filters | None = None,
    fusion: Fusion | None = None,
    collapse: bool = False,
    expand: bool = False,
) -> SearchResult:
    """The k passages the user may read that rank best for `query`: one SQL statement (see
    retrieval.statement) with permissions and filters inside every branch. `collapse`: at most
    one passage (the best) per document. In `hybrid+rerank` mode the hybrid candidates are
    re-ordered by the configured re-ranker. `expand`: also search rephrasings of the query
    (retrieval.expansion) and fuse all rankings by reciprocal rank.

    Reads from a replica when one is fresh enough for this user (accounts.replicas). Waits for
    one of the process's search slots, or raises core.admission.Overloaded."""
    with search_admitted(), replica_reads(user=user):
        return _passages_search(
            user=user,
            query=query,
            k=k,
            mode=mode,
            filters=filters,
            fusion=fusion,
            collapse=collapse,
            expand=expand,
        )


def _passages_search(
    *,
    user,
    query: str,
    k: int,
    mode: str,
    filters: Filters | None,
    fusion: Fusion | None,
    collapse: bool,
    expand: bool,
) -> SearchResult:
    started = time.monotonic()
    if mode not in MODES:
        raise SearchError(f"Unknown mode {mode!r}; one of: {', '.join(MODES)}.")
    if not 1 <= k <= MAX_K:
        raise SearchError(f"k must be between 1 and {MAX_K}, got {k}.")
    query = query.strip()
    if not query:
        raise SearchError("The query is empty.")
    rerank = mode == "hybrid+rerank"
    if rerank:
        ranker = reranker()
        if ranker is None:
            raise SearchError(
                "Mode hybrid+rerank needs a re-ranker: set PRODRAG_RERANKER to a local "
                "cross-encoder directory or to `llm`."
            )
    principals = user_principals(user=user)
    filters = filters or Filters()
    wanted = max(k, settings.RERANK_DEPTH) if rerank else k
    sql_mode = HYBRID if rerank else mode
    spec = _statement(principals, query, sql_mode, wanted, filters, fusion, collapse)
    readable = principals.unrestricted or principals.ids
    fallback = None
    try:
        if sql_mode != FULLTEXT:
            spec = dataclasses.replace(spec, vector=_query_vector_or_fail(query))
        passages = _statement_run_or_fail(spec) if readable else []
    except VectorsUnavailable as failure:
        # Degraded, not failed: full text alone still finds passages, and the response says so.
        logger.warning("Vector search unavailable, full text only: %s", failure)
        fallback = sql_mode = FULLTEXT
        spec = dataclasses.replace(spec, mode=FULLTEXT, vector=None)
        passages = _statement_run(spec) if readable else []
    expansions: list[str] = []
    if expand and passages:
        paths = [(variant, sql_mode) for variant in llm_variants(query)] or _feedback_paths(
            query, passages
        )
        rankings = [passages]
        for text, path_mode in paths:
            # A keyword path keeps the question's own vector: passages' similarity to the
            # question is what context assembly's threshold reads.
            vector = _query_vector(text) if path_mode != FULLTEXT else spec.vector
            rankings.append(
                _statement_run(dataclasses.replace(spec, text=text, mode=path_mode, vector=vector))
            )
            expansions.append(text)
        passages = _rankings_fuse(rankings, k=wanted, rrf_k=spec.fusion.rrf_k, collapse=collapse)
    if rerank:
        passages = ranker.rerank(query, passages)[:k]
    if fallback:
        warnings = [FALLBACK_WARNING]
        metrics.SEARCH_FALLBACKS.inc()
    else:
        warnings = _model_warnings(user, filters) if sql_mode != FULLTEXT else []
    seconds = time.monotonic() - started
    metrics.SEARCH_SECONDS.labels(mode=mode).observe(seconds)
    if logger.isEnabledFor(logging.INFO):  # masking runs its patterns only for a line written
        logger.info(
            "search mode=%s k=%d passages=%d ms=%.1f fallback=%s query=%r",
            mode, k, len(passages), seconds * 1000, fallback, pii_mask(query),
        )  # fmt: skip
    return SearchResult(
        query=query,
        mode=mode,
        passages=passages,
        expansions=expansions,
        warnings=warnings,
        seconds=seconds,
        fallback=fallback,
    )


def ranking(
    *, user, query: str, k: int, mode: str, filters: Filters, fusion: Fusion, collapse: bool
) -> list[Passage]:
    """The retrieval statement's ranking alone, as `user` may see it: no fallback, expansion,
    re-ranking, warnings, metrics or log line (calibration compares thousands of these)."""
    principals = user_principals(user=user)
    if not (principals.unrestricted or principals.ids):
        return []
    spec = _statement(principals, query, mode, k, filters, fusion, collapse)
    if mode != FULLTEXT:
        spec = dataclasses.replace(spec, vector=_query_vector(query))
    return _statement_run(spec)


def _statement(
    principals: Principals,
    query: str,
    mode: str,
    k: int,
    filters: Filters,
    fusion: Fusion | None,
    collapse: bool,
) -> Statement:
    return Statement(
        mode=mode,
        text=query,
        vector=None,
        principals=None if principals.unrestricted else principals.ids,
        filters=filters,
        fusion=fusion or fusion_default(),
        k=k,
        depth=max(settings.SEARCH_CANDIDATES, k * 3 if collapse else k),
        collapse=collapse,
        model=embedder().model,
        dimensions=settings.EMBEDDING_DIMENSIONS,
        fts_config=settings.FTS_CONFIG,
        exact_below=settings.SEARCH_EXACT_BELOW,
        vector_exact_below=settings.SEARCH_VECTOR_EXACT_BELOW,
        bm25_k1=settings.BM25_K1,
        bm25_b=settings.BM25_B,
        postings=settings.SEARCH_POSTINGS,
    )


def _query_vector_or_fail(query: str) -> str:
    try:
        return _query_vector(query)
    except _EMBEDDING_FAILURES as exc:
        raise VectorsUnavailable(f"embedding the query: {exc}") from exc


def _statement_run_or_fail(spec: Statement) -> list[Passage]:
    """_statement_run; an error of the statement itself (a damaged or missing vector index,
    say), not of the connection, is VectorsUnavailable when the statement ranks by vector."""
    try:
        return _statement_run(spec)
    except DatabaseError as exc:
        state = getattr(exc.__cause__, "sqlstate", None) or ""
        connection_lost = not state or state.startswith(("08", "57P"))
        if spec.mode == FULLTEXT or connection_lost:
            raise
        raise VectorsUnavailable(f"the vector ranking failed: {exc}") from exc


def _statement_run(spec: Statement) -> list[Passage]:
    sql, params = statement_build(spec)
    # SET LOCAL lasts until the end of this transaction: the HNSW walk of this one search.
    alias = reading_alias()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.max_scan_tuples', %s, true), "
            # Full text's pooled stage sums the postings of every query word per passage in
            # memory: hundreds of thousands of passages for common words at 1M passages.
            "set_config('work_mem', '64MB', true)",
            [
                str(min(1000, max(settings.HNSW_EF_SEARCH, spec.depth))),
                str(settings.HNSW_MAX_SCAN_TUPLES),
            ],
        )
        with tracer.start_as_current_span("retrieval.sql") as span:
            span.set_attribute("db.system", "postgresql")
            span.set_attribute("prodrag.search.mode", spec.mode)
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            span.set_attribute("prodrag.search.rows", len(rows))
    return [
        Passage(
            chunk_id=row[0],
            score=float(row[1]),
            dense_rank=row[2],
            fulltext_rank=row[3],
            similarity=None if row[4] is None else float(row[4]),
            bm25=None if row[5] is None else float(row[5]),
            document_id=row[6],
            title=row[7],
            source=row[8],
            content_type=row[9],
            collection_id=row[10],
            collection=row[11],
            version_id=row[12],
            version=row[13],
            ordinal=row[14],
            heading_path=tuple(row[15]),
            page_start=row[16],
            page_end=row[17],
            char_start=row[18],
            char_end=row[19],
            text=row[20],
            dense_share=row[21],
            fulltext_coverage=row[22],
        )
        for row in rows
    ]


def _feedback_paths(query: str, passages: list[Passage]) -> list[tuple[str, str]]:
    sql, params = expansion_terms_build(
        chunk_ids=[passage.chunk_id for passage in passages[:FEEDBACK_PASSAGES]],
        text=query,
        fts_config=settings.FTS_CONFIG,
        n=FEEDBACK_TERMS,
    )
    with connections[reading_alias()].cursor() as cursor:
        cursor.execute(sql, params)
        terms = [row[0] for row in cursor.fetchall()]
    return [(feedback_text(query, terms), FULLTEXT)] if terms else []


def _rankings_fuse(
    rankings: list[list[Passage]], *, k: int, rrf_k: int, collapse: bool
) -> list[Passage]:
    """Reciprocal-rank fusion of several searches' results (multi-path recall)."""
    scores: dict[int, float] = {}
    first_seen: dict[int, Passage] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking, start=1):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + 1 / (rrf_k + rank)
            first_seen.setdefault(passage.chunk_id, passage)
    fused = sorted(first_seen.values(), key=lambda p: (-scores[p.chunk_id], p.chunk_id))
    if collapse:
        best: dict[int, Passage] = {}
        for passage in fused:
            best.setdefault(passage.document_id, passage)
        fused = list(best.values())
    # Scored by reciprocal rank over the rankings, not by one fusion's share and coverage.
    return [
        dataclasses.replace(p, score=scores[p.chunk_id], dense_share=None, fulltext_coverage=None)
        for p in fused[:k]
    ]


def _query_vector(text: str) -> str:
    return _query_vector_cached(embedder().model, text)


@functools.lru_cache(maxsize=2048)
def _query_vector_cached(model: str, text: str) -> str:
    """The query's embedding as a pgvector literal, computed once per distinct query."""
    vector = embedder().embed([text])[0]
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


_MISMATCH_CACHE_KEY = "retrieval:embedded-otherwise"


def _model_warnings(user, filters: Filters) -> list[str]:
    """Documents embedded by another model than the configured one are left out of the vector
    ranking (their vectors are never compared with the query's); say so, per collection, with
    the command that fixes it, counting only the documents the user may read (nothing is said
    of the others, not even how many there are)."""
    model = embedder().model
    embedded_otherwise = documents_embedded_otherwise()
    # Which collections hold any such document at all, shared by every reader for a minute: a
    # search pays for the per-reader count only while a re-embedding is due.
    affected = cache.get(_MISMATCH_CACHE_KEY)
    if affected is None:
        affected = list(embedded_otherwise.values_list("collection_id", flat=True).distinct())
        cache.set(_MISMATCH_CACHE_KEY, affected, 60)
    ids = [pk for pk in affected if not filters.collections or pk in filters.collections]
    if not ids:
        return []
    counts = (
        embedded_otherwise.visible_to(user)
        .filter(collection_id__in=ids)
        .values_list("collection__name")
        .annotate(n=Count("pk"))
        .order_by("collection__name")
        .values_list("collection__name", "n")
    )
    return [
        f"{n} document(s) of collection {name!r} were embedded by another model than "
        f"{model}; only full-text search finds them until `manage.py reembed --collection "
        f"{name!r}` has run."
        for name, n in counts
    ]
