"""Retrieval quality on a BEIR-format dataset, with trec_eval's measures (pytrec_eval)."""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytrec_eval

from documents.models import Collection, Document
from retrieval.selectors import fusion_default, passages_search
from retrieval.types import DENSE, FULLTEXT, Filters, Fusion


class EvaluationError(ValueError):
    pass


@dataclass(frozen=True)
class Evaluation:
    dataset: str
    mode: str
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_p50_ms: float
    latency_p95_ms: float
    # Hybrid modes: the fusion method, the vector share (None: each query's own) and where it
    # came from; the collection's calibrated share (a measurement, not applied) beside it.
    fusion: dict | None = None

    def as_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "mode": self.mode,
            **({"fusion": self.fusion} if self.fusion else {}),
            "queries": self.queries,
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "latency_ms": {
                "p50": round(self.latency_p50_ms, 1),
                "p95": round(self.latency_p95_ms, 1),
            },
        }


def beir_queries_read(directory: Path, split: str = "test") -> tuple[dict, dict]:
    """(queries: id -> text, qrels: query id -> {corpus id: relevance}) of the split's judged
    queries."""
    queries_path, qrels_path = directory / "queries.jsonl", directory / "qrels" / f"{split}.tsv"
    for path in (queries_path, qrels_path):
        if not path.is_file():
            raise EvaluationError(f"{path} does not exist (expected a BEIR-format dataset).")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) != 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {}
    with queries_path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = str(row["text"])
    missing = set(qrels) - set(queries)
    if missing:
        raise EvaluationError(
            f"{len(missing)} judged queries have no text in {queries_path} "
            f"(first: {sorted(missing)[0]})."
        )
    return queries, qrels


def document_evaluation_id(*, external_id: str, source: str) -> str:
    """How judgements name a document: the id it had where it was imported from (import_beir),
    else the file name it was loaded from (its source's last part)."""
    return external_id or source.rstrip("/").rsplit("/", 1)[-1]


def collection_evaluate(
    *,
    user,
    directory: Path,
    collection: Collection,
    mode: str,
    k: int = 100,
    limit: int | None = None,
    share: float | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> Evaluation:
    """Run a BEIR-format dataset's judged test queries against `collection`
    (judgements_evaluate)."""
    queries, qrels = beir_queries_read(directory)
    return judgements_evaluate(
        user=user,
        name=directory.resolve().name,
        queries=queries,
        qrels=qrels,
        collection=collection,
        mode=mode,
        k=k,
        limit=limit,
        share=share,
        progress=progress,
    )


def judgements_evaluate(
    *,
    user,
    name: str,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    collection: Collection | None,
    mode: str,
    k: int = 100,
    limit: int | None = None,
    share: float | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> Evaluation:
    """Run judged queries against `collection` (None: every collection) as `user` and score
    the ranked documents (each document ranked by its best passage, named by
    document_evaluation_id). `share`: the vector share of hybrid fusion for this run instead
    of the collection's."""
    if limit:
        queries = dict(list(queries.items())[:limit])
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    if not queries:
        raise EvaluationError(f"{name}: no judged queries.")
    qrels = {qid: qrels[qid] for qid in queries}
    documents = Document.objects.all() if collection is None else collection.documents.all()
    external = {
        pk: document_evaluation_id(external_id=external_id, source=source)
        for pk, external_id, source in documents.values_list("pk", "external_id", "source")
    }
    if not external:
        where = "The database" if collection is None else f"Collection {collection.name!r}"
        raise EvaluationError(f"{where} has no documents.")
    fusion = fusion_default() if share is None else fusion_default().at_share(share)
    run: dict[str, dict[str, float]] = {}
    latencies = []
    shares = []  # the vector share each query's best passage was fused with
    for done, (qid, text) in enumerate(queries.items(), start=1):
        started = time.monotonic()
        result = passages_search(
            user=user,
            query=text,
            k=k,
            mode=mode,
            filters=Filters(collections=() if collection is None else (collection.pk,)),
            fusion=fusion,
            collapse=True,
        )
        latencies.append((time.monotonic() - started) * 1000)
        if result.passages and result.passages[0].dense_share is not None:
            shares.append(result.passages[0].dense_share)
        # Scores by rank, not the fused score: trec_eval breaks score ties by document id,
        # which would reorder passages whose fused scores happen to be equal.
        # Two documents may share an evaluation id (two files of one name): the better counts.
        ranked = run[qid] = {}
        for rank, passage in enumerate(result.passages):
            ranked.setdefault(external[passage.document_id], float(k - rank))
        progress(done)
    measures = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    top10 = {
        qid: dict(sorted(docs.items(), key=lambda item: -item[1])[:10]) for qid, docs in run.items()
    }
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)

    def mean(table: dict, measure: str) -> float:
        # Queries with an empty result are absent from trec_eval's output: they score 0.
        return sum(table.get(qid, {}).get(measure, 0.0) for qid in queries) / len(queries)

    percentiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return Evaluation(
        dataset=name,
        mode=mode,
        queries=len(queries),
        ndcg_at_10=mean(measures, "ndcg_cut_10"),
        recall_at_100=mean(measures, "recall_100"),
        mrr_at_10=mean(reciprocal, "recip_rank"),
        latency_p50_ms=statistics.median(latencies),
        latency_p95_ms=percentiles[94],
        fusion=None
        if mode in (DENSE, FULLTEXT)
        else _fusion_used(collection, fusion, share, shares),
    )


def _fusion_used(
    collection: Collection | None, fusion: Fusion, share: float | None, used: list[float]
) -> dict:
    if share is not None:
        source = "this run"
    elif collection is not None and collection.fusion_dense_weight is not None:
        share, source = collection.fusion_dense_weight, "set by hand"
    elif fusion.per_query:
        source = "each query's own"
    else:
        share, source = fusion.dense_share, "default"
    return {
        "method": fusion.method,
        "dense_share": share,
        "source": source,
        "calibrated_share": collection and collection.calibrated_dense_weight,
        # The shares the queries' best passages were fused with: 10th, 50th, 90th percentile.
        "shares_used": _deciles(used),
    }


def _deciles(values: list[float]) -> dict | None:
    if not values:
        return None
    cuts = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 else values * 9
    return {"p10": round(cuts[0], 3), "p50": round(cuts[4], 3), "p90": round(cuts[8], 3)}
