"""Evaluation sets and their stored runs: registering judged queries, running them (by
command, from the admin, or on a set's schedule through Celery beat) and spotting a run that
fell below the previous one (PRODRAG_QUALITY_DROP)."""

from __future__ import annotations

import functools
import logging
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from accounts.models import User
from accounts.selectors import user_principals
from core.metrics import QUALITY_REGRESSIONS
from documents.embedding import embedder
from documents.models import Collection, Document
from documents.samples import SAMPLE_COLLECTION, SAMPLE_EVALUATION_SET, SAMPLE_QUESTIONS
from retrieval.evaluation import Evaluation, EvaluationError, beir_queries_read, judgements_evaluate
from retrieval.models import EvaluationRun, EvaluationSet
from retrieval.types import DENSE, FULLTEXT, HYBRID

log = logging.getLogger("prodrag.quality")


@functools.cache
def code_version() -> str:
    """`git describe` of the checkout when there is one, else the installed package's version."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],  # noqa: S607
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    if described:
        return described
    try:
        return metadata.version("prodrag")
    except metadata.PackageNotFoundError:
        return ""


def embedding_runtime() -> str:
    """What made the query vectors, after any fallback: `endpoint`, `torch`, `onnx`, or
    `onnx int8` for the quantised model (whose answers differ a little: docs/benchmarks.md)."""
    provider = embedder()
    return " ".join(part for part in (provider.runtime, provider.quantize) if part != "none")


def evaluation_set_register(
    *,
    name: str,
    source: str,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    collection: Collection | None,
    origin: str = "",
    modes: tuple[str, ...] = (HYBRID,),
) -> EvaluationSet:
    """Create the set (measured in `modes`), or replace the judgements of the set of that
    name (its schedule, modes and runs stay). Only queries with at least one relevant
    judgement are kept: a query with none scores 0 whatever search does.

    Locks: the set's row, when it exists."""
    judged = {
        qid: {doc: int(score) for doc, score in qrels[qid].items()}
        for qid in queries
        if any(int(score) > 0 for score in qrels.get(qid, {}).values())
    }
    if not judged:
        raise EvaluationError(f"{name}: no query has a relevant judgement.")
    with transaction.atomic():
        judgements = {
            "source": source,
            "origin": origin,
            "collection": collection,
            "queries": {qid: queries[qid] for qid in judged},
            "qrels": judged,
        }
        evaluation_set, _ = EvaluationSet.objects.select_for_update().update_or_create(
            name=name,
            defaults=judgements,
            create_defaults=judgements | {"modes": list(modes)},
        )
    return evaluation_set


def evaluation_set_from_beir(
    *, directory: Path, collection: Collection, name: str | None = None
) -> EvaluationSet:
    """Register a BEIR-format folder's judged test queries (named after the folder unless
    `name`), to run against `collection`."""
    queries, qrels = beir_queries_read(directory)
    return evaluation_set_register(
        name=name or directory.resolve().name,
        source=EvaluationSet.Source.BEIR,
        queries=queries,
        qrels=qrels,
        collection=collection,
        origin=str(directory.resolve()),
    )


def collection_settled(collection: Collection | None) -> bool:
    """Whether none of the collection's (or, for None, any) documents waits for ingestion:
    a run before then would measure half a corpus."""
    documents = Document.objects.all() if collection is None else collection.documents.all()
    settled = [Document.Status.READY, Document.Status.FAILED]
    return not documents.exclude(status__in=settled).exists()


def evaluation_set_sample() -> EvaluationSet:
    """Register the sample corpus's questions (documents.samples) as the sample set, over the
    sample collection, measured in every mode."""
    collection = Collection.objects.filter(name=SAMPLE_COLLECTION).first()
    if collection is None:
        raise EvaluationError(
            f"No collection named {SAMPLE_COLLECTION!r}: load the sample first "
            "(manage.py load_sample)."
        )
    return evaluation_set_register(
        name=SAMPLE_EVALUATION_SET,
        source=EvaluationSet.Source.SAMPLE,
        queries={qid: text for qid, (text, _) in SAMPLE_QUESTIONS.items()},
        qrels={qid: dict.fromkeys(files, 1) for qid, (_, files) in SAMPLE_QUESTIONS.items()},
        collection=collection,
        modes=(HYBRID, DENSE, FULLTEXT),
    )


def evaluation_store(
    *, evaluation_set: EvaluationSet, evaluation: Evaluation, trigger: str
) -> EvaluationRun:
    """Store a run of the set and compare it with the previous run of the same set and mode:
    more than PRODRAG_QUALITY_DROP lower in nDCG@10 is a regression (warning log line,
    `prodrag_quality_regressions_total`, and `regressed_from` on the run).

    Locks: the set's row, so that two runs finishing together compare in order."""
    with transaction.atomic():
        EvaluationSet.objects.select_for_update().filter(pk=evaluation_set.pk).first()
        previous = evaluation_set.runs.filter(mode=evaluation.mode).first()
        dropped = previous is not None and (
            previous.ndcg_at_10 - evaluation.ndcg_at_10 > settings.QUALITY_DROP
        )
        run = EvaluationRun.objects.create(
            evaluation_set=evaluation_set,
            collection=evaluation_set.collection,
            mode=evaluation.mode,
            queries=evaluation.queries,
            ndcg_at_10=evaluation.ndcg_at_10,
            recall_at_100=evaluation.recall_at_100,
            mrr_at_10=evaluation.mrr_at_10,
            latency_p50_ms=evaluation.latency_p50_ms,
            latency_p95_ms=evaluation.latency_p95_ms,
            fusion=evaluation.fusion,
            embedding_model=settings.EMBEDDING_MODEL,
            embedding_runtime=embedding_runtime(),
            code_version=code_version(),
            trigger=trigger,
            regressed_from=previous.ndcg_at_10 if dropped else None,
        )
    if dropped:
        QUALITY_REGRESSIONS.labels(set=evaluation_set.name, mode=evaluation.mode).inc()
        log.warning(
            "quality regression: %s (%s) nDCG@10 %.4f, previous run %.4f (allowed drop %.3f)",
            evaluation_set.name,
            evaluation.mode,
            evaluation.ndcg_at_10,
            previous.ndcg_at_10,
            settings.QUALITY_DROP,
        )
    return run


def evaluator() -> User:
    """Evaluation searches as a superuser: the set's judgements name documents of its whole
    collection."""
    user = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if user is None:
        raise EvaluationError("Evaluation runs as a superuser; create one first.")
    return user


def evaluation_set_measure(
    *,
    evaluation_set: EvaluationSet,
    mode: str,
    trigger: str,
    progress: Callable[[int], None] = lambda done: None,
) -> EvaluationRun:
    """Run the set in one mode (as `evaluator()`) and store the run (evaluation_store)."""
    evaluation = judgements_evaluate(
        user=evaluator(),
        name=evaluation_set.name,
        queries=evaluation_set.queries,
        qrels=evaluation_set.qrels,
        collection=evaluation_set.collection,
        mode=mode,
        progress=progress,
    )
    return evaluation_store(evaluation_set=evaluation_set, evaluation=evaluation, trigger=trigger)


def evaluation_set_run(*, evaluation_set: EvaluationSet, trigger: str) -> list[EvaluationRun]:
    """Run the set in each of its modes and store the runs (evaluation_set_measure)."""
    return [
        evaluation_set_measure(evaluation_set=evaluation_set, mode=mode, trigger=trigger)
        for mode in evaluation_set.modes or [HYBRID]
    ]


def evaluation_sets_due(now: datetime) -> list[EvaluationSet]:
    """Sets with a schedule whose last run (of any trigger) is older than it, or never ran."""
    due = []
    for evaluation_set in EvaluationSet.objects.exclude(schedule_hours=None):
        last = evaluation_set.runs.values_list("created_at", flat=True).first()
        if last is None or now - last >= timedelta(hours=evaluation_set.schedule_hours):
            due.append(evaluation_set)
    return due


def evaluation_sets_visible_to(user) -> QuerySet[EvaluationSet]:
    """Sets whose collection the user may read in or manage; sets over every collection only
    for unrestricted users (superusers)."""
    if user_principals(user=user).unrestricted:
        return EvaluationSet.objects.all()
    # Managers read in the collections they manage: visible_to holds those too.
    visible = Collection.objects.visible_to(user)
    return EvaluationSet.objects.filter(collection__in=visible.values("pk"))


def evaluation_runs_visible_to(user) -> QuerySet[EvaluationRun]:
    """Runs of the sets the user may see (evaluation_sets_visible_to)."""
    return EvaluationRun.objects.select_related("evaluation_set").filter(
        evaluation_set__in=evaluation_sets_visible_to(user)
    )
