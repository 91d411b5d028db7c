"""Prometheus metrics: django-prometheus's HTTP and model metrics, and prodrag's own, named
`prodrag_*`. Events (a search, an LLM call, an ingestion stage) are counted where they happen,
in web and worker processes alike; states (documents per status, the ingestion backlog) are
read from the database when the metrics are scraped, so every process reports the same.

Several processes (gunicorn's workers, the Celery pool): with PROMETHEUS_MULTIPROC_DIR set,
each writes its samples there and whichever process is scraped reports them all (`make up`
sets it for web and worker, which share a machine; a worker in its own container serves its
samples on PRODRAG_WORKER_METRICS_PORT instead). Without it, each process reports its own.

`/metrics` is answered by core.health.HealthProbes: with PRODRAG_METRICS_TOKEN set, only to
`Authorization: Bearer <token>`; without one, in production, not at all (404), elsewhere to
anyone.
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

_LATENCY = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

SEARCH_SECONDS = Histogram(
    "prodrag_search_seconds", "Search latency (embedding the query included).", ["mode"],
    buckets=_LATENCY,
)  # fmt: skip
SEARCHES_SHED = Counter(
    "prodrag_searches_shed_total",
    "Searches refused (503 with Retry-After) because the process ran as many as it may at once "
    "for PRODRAG_SEARCH_QUEUE_SECONDS.",
)
SEARCH_FALLBACKS = Counter(
    "prodrag_search_fallbacks_total",
    "Searches answered by full text alone because vector search failed.",
)
REPLICA_READS = Counter(
    "prodrag_replica_reads_total",
    "Reads that could use a replica (search, answer retrieval, read-only pages), by the "
    "database that served them.",
    ["database"],
)
REPLICA_SKIPS = Counter(
    "prodrag_replica_skips_total",
    "Times a replica was passed over for a read, by replica and reason (down, lagging, "
    "behind: it has not replayed a permission change or the user's last write).",
    ["replica", "reason"],
)

ANSWERS = Counter("prodrag_answers_total", "Answers stored, by mode.", ["mode"])
ANSWER_FALLBACKS = Counter(
    "prodrag_answer_fallbacks_total",
    "Answers that are extractive although an LLM is configured (it failed).",
)
CITATIONS_DROPPED = Counter(
    "prodrag_citations_dropped_total",
    "Citation markers removed from generated answers (no such source).",
)
LLM_SECONDS = Histogram(
    "prodrag_llm_seconds", "LLM call latency until the answer (or its first piece) arrives.",
    ["operation"], buckets=_LATENCY,
)  # fmt: skip
LLM_ERRORS = Counter(
    "prodrag_llm_errors_total", "Failed LLM attempts, by kind.", ["kind"]
)  # fmt: skip
LLM_RETRIES = Counter("prodrag_llm_retries_total", "LLM attempts retried after a failure.")
LLM_TOKENS = Counter(
    "prodrag_llm_tokens_total", "Tokens the LLM endpoint reported, by kind.", ["kind"]
)  # fmt: skip
INGEST_STAGE_SECONDS = Histogram(
    "prodrag_ingestion_stage_seconds", "Time per document and ingestion stage.", ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)  # fmt: skip
INGEST_FAILURES = Counter(
    "prodrag_ingestion_failures_total", "Documents that failed, by the stage they failed in.",
    ["stage"],
)  # fmt: skip
DIRECTORY_SYNCS = Counter(
    "prodrag_directory_syncs_total",
    "LDAP directory syncs by outcome: done, failed (the directory did not answer in full; "
    "nothing changed) or held (too many removals; nothing changed).",
    ["outcome"],
)
DIRECTORY_CHANGES = Counter(
    "prodrag_directory_changes_total",
    "Changes made by a directory (LDAP sync, SCIM, sign-in claims), by kind.",
    ["directory", "change"],
)
SIGNINS = Counter("prodrag_signins_total", "Sign-ins by method and result.", ["method", "result"])
SOURCE_ITEMS = Counter(
    "prodrag_source_items_total",
    "Items of sources by what a sync did with them: added, changed, unchanged, deleted, failed.",
    ["source", "outcome"],
)
SOURCE_SYNC_SECONDS = Histogram(
    "prodrag_source_sync_seconds", "How long a source's sync took, by outcome.",
    ["source", "outcome"], buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)  # fmt: skip
SOURCE_PERMISSION_SECONDS = Histogram(
    "prodrag_source_permission_pass_seconds",
    "How long a mirror source's permission pass (its items' readers read again) took.",
    ["source"], buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
)  # fmt: skip
QUALITY_REGRESSIONS = Counter(
    "prodrag_quality_regressions_total",
    "Evaluation runs whose nDCG@10 fell more than PRODRAG_QUALITY_DROP below the previous run "
    "of the same set and mode.",
    ["set", "mode"],
)
TASKS = Counter(
    "prodrag_worker_tasks_total", "Celery tasks finished, by task and outcome.",
    ["task", "outcome"],
)  # fmt: skip


# Values read at scrape time, from collectors the apps register (documents: documents per
# status and the ingestion backlog).
_STATES = CollectorRegistry()


def state_collector_register(collector) -> None:
    """Add a collector whose values are read at every scrape (an app's AppConfig.ready)."""
    _STATES.register(collector)


def events_registry() -> CollectorRegistry:
    """The event metrics: every process's samples in multiprocess mode, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_exposition() -> bytes:
    """The text exposition of every metric: the events and the states."""
    return generate_latest(events_registry()) + generate_latest(_STATES)


def worker_metrics_serve(port: int) -> None:
    """Serve the event metrics on `port` from a background thread (a worker's own)."""
    start_http_server(port, registry=events_registry())


def metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return not settings.PRODUCTION
    given = request.headers.get("Authorization", "")
    return secrets.compare_digest(given.encode(), f"Bearer {token}".encode())
