"""Hybrid fusion on SciFact and on two query sets built from it, with the collection's
label-free calibration.

    .venv/bin/python -m bench.fusion --collection NAME [--pgdata DIR]

Runs on a collection already loaded from SciFact (`bench.ingest`, or `manage.py import_beir
../shared/datasets/scifact --collection NAME --sync`) in the embedded database at --pgdata
(default var/bench-pgdata). It calibrates the collection (retrieval.calibration: no labels),
then scores three query sets, each split into two halves by query id:

- real: SciFact's 300 test queries;
- rare (favours full text): for each test query, the four rarest words (document frequency
  in the corpus) of its first relevant document;
- mismatch (favours vectors): each test query without the words whose lexemes occur in its
  relevant documents (queries left with fewer than two such words are dropped), the
  vocabulary mismatch of a paraphrase.

For each set: nDCG@10 of dense, full text, hybrid at the calibrated share and at every share
from 0 to 1; and two-fold cross-validation of a share fitted on labelled queries (the best
share on one half, scored on the other, both ways), against which the label-free share is
compared. The sets are written in BEIR format under var/bench-fusion/ and scored by
`manage.py evaluate`'s code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup(pgdata: Path) -> None:
    os.environ["PRODRAG_PGDATA"] = str(pgdata)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)  # one log line per search


_WORD = re.compile(r"\w[\w'-]*")


def _lexemes(text: str) -> set[str]:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s))", [settings.FTS_CONFIG, text]
        )
        return set(cursor.fetchone()[0])


def query_sets(corpus_dir: Path) -> dict[str, tuple[dict[str, str], dict]]:
    """name -> (query id -> text, qrels) for the real, rare and mismatch sets."""
    from retrieval.evaluation import beir_queries_read

    queries, qrels = beir_queries_read(corpus_dir)
    corpus = {}
    with (corpus_dir / "corpus.jsonl").open() as rows:
        for line in rows:
            row = json.loads(line)
            corpus[row["_id"]] = f"{row.get('title') or ''} {row['text']}"
    frequency: dict[str, int] = {}
    for text in corpus.values():
        for word in {w.lower() for w in _WORD.findall(text) if w[0].isalpha() and len(w) > 2}:
            frequency[word] = frequency.get(word, 0) + 1
    rare = {}
    for qid in queries:
        words = {w.lower() for w in _WORD.findall(corpus[next(iter(qrels[qid]))])}
        words = sorted((w for w in words if w in frequency), key=lambda w: (frequency[w], w))
        rare[qid] = " ".join(words[:4])
    mismatch = {}
    for qid, text in queries.items():
        relevant = set().union(*(_lexemes(corpus[doc]) for doc in qrels[qid]))
        kept = [w for w in _WORD.findall(text) if not (_lexemes(w) and _lexemes(w) <= relevant)]
        if sum(bool(_lexemes(w)) for w in kept) >= 2:
            mismatch[qid] = " ".join(kept)
    return {
        "real": (queries, qrels),
        "rare": (rare, qrels),
        "mismatch": (mismatch, {qid: qrels[qid] for qid in mismatch}),
    }


def _write(directory: Path, queries: dict[str, str], qrels: dict) -> Path:
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    with (directory / "queries.jsonl").open("w") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (directory / "qrels" / "test.tsv").open("w") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid in queries:
            for doc, relevance in qrels[qid].items():
                out.write(f"{qid}\t{doc}\t{relevance}\n")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collection", required=True)
    parser.add_argument("--pgdata", type=Path, default=ROOT / "var" / "bench-pgdata")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/datasets/scifact")
    args = parser.parse_args()
    _setup(args.pgdata.resolve())

    from accounts.models import User
    from documents.models import Collection
    from retrieval.calibration import SHARES, collection_calibrate
    from retrieval.evaluation import collection_evaluate

    collection = Collection.objects.get(name=args.collection)
    user = User.objects.filter(is_superuser=True).order_by("pk").first()
    calibration = collection_calibrate(collection)
    if calibration is None:
        sys.exit("The collection gives too few pseudo-queries to calibrate.")
    calibrated = calibration.dense_weight
    print(f"calibrated vector share {calibrated} from {calibration.pseudo_queries} pseudo-queries")
    print("pseudo-query MRR@10 by share: " + json.dumps(calibration.mrr))

    def ndcg(directory: Path, mode: str, share: float | None = None) -> float:
        result = collection_evaluate(
            user=user, directory=directory, collection=collection, mode=mode, share=share
        )
        return result.ndcg_at_10

    for name, (queries, qrels) in query_sets(args.corpus).items():
        ids = sorted(queries)
        halves = [ids[0::2], ids[1::2]]
        scores = []  # per half: {"dense", "fulltext", share...}
        for number, half in enumerate(halves):
            directory = _write(
                ROOT / "var" / "bench-fusion" / f"{name}-{number}",
                {qid: queries[qid] for qid in half},
                qrels,
            )
            half_scores = {
                "dense": ndcg(directory, "dense"),
                "fulltext": ndcg(directory, "fulltext"),
            }
            half_scores |= {share: ndcg(directory, "hybrid", share) for share in SHARES}
            scores.append(half_scores)
        _report(name, scores, [len(half) for half in halves], calibrated)


def _report(name: str, scores: list[dict], sizes: list[int], calibrated: float) -> None:
    from retrieval.calibration import SHARES

    def whole(key) -> float:
        return sum(s[key] * n for s, n in zip(scores, sizes, strict=True)) / sum(sizes)

    fitted = [max(SHARES, key=lambda share, s=s: s[share]) for s in scores]
    cross = sum(scores[1 - i][fitted[i]] * sizes[1 - i] for i in range(2)) / sum(sizes)
    print(
        f"\n{name} ({sum(sizes)} queries): dense {whole('dense'):.4f}  full text "
        f"{whole('fulltext'):.4f}  hybrid at the calibrated share {calibrated} "
        f"{whole(calibrated):.4f}"
    )
    print("  hybrid by share: " + "  ".join(f"{s} {whole(s):.4f}" for s in SHARES))
    print(
        f"  share fitted on labelled halves: {fitted[0]} (half 1), {fitted[1]} (half 2); "
        f"cross-validated nDCG@10 {cross:.4f}"
    )
    for i in range(2):
        print(
            f"  half {i + 1}: calibrated {scores[i][calibrated]:.4f}, fitted on the other half "
            f"({fitted[1 - i]}) {scores[i][fitted[1 - i]]:.4f}, dense {scores[i]['dense']:.4f}, "
            f"full text {scores[i]['fulltext']:.4f}"
        )


if __name__ == "__main__":
    main()
