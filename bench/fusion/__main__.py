"""Hybrid fusion on SciFact and on four query sets built from it, each favouring one branch,
with the collection's label-free calibration.

    .venv/bin/python -m bench.fusion --collection NAME [--pgdata DIR]
    .venv/bin/python -m bench.fusion --short titles|lead --collection NAME --pgdata OTHER_DIR

Runs on a collection already loaded from SciFact (`bench.ingest`, or `manage.py import_beir
../shared/datasets/scifact --collection NAME --sync`) in the embedded database at --pgdata
(default var/bench-pgdata). The query sets, all judged by SciFact's qrels:

- real: SciFact's 300 test queries;
- rare (favours full text): for each test query, the four rarest words (document frequency
  in the corpus) of its first relevant document, as a search for identifiers would be;
- typo (full text loses most): each test query with two neighbouring letters swapped in
  every word of five or more letters;
- paraphrase (favours vectors): each test query with every word that has a lexeme replaced
  by the nearest corpus word by embedding (all-MiniLM-L6-v2) whose lexeme and first four
  letters differ, a crude stand-in for other words of the same meaning;
- mismatch (full text finds almost nothing): each test query without the words whose
  lexemes occur in its relevant documents (queries left with fewer than two such words are
  dropped).

For each set: nDCG@10 of dense, full text, the default hybrid fusion (`adaptive`, no
labels, nothing fitted per collection) and convex fusion at an even split (the default
before). On the real queries also: the adaptive fusion at every fixed
vector share from 0 to 1 and two-fold cross-validation of a share fitted on labelled queries
(the best share on one half, scored on the other, both ways), which is what labels could
add. The collection's
label-free calibration is run and reported. The sets are written in BEIR format under
var/bench-fusion/ and scored by `manage.py evaluate`'s code.

With --short: the same four figures for SciFact's real queries on a collection of short
documents made from its corpus (short_corpora: titles alone, or first sentences alone),
loaded as NAME on the first run, in a database of its own (migrated, with a superuser), since
BM25's statistics are those of all the collections of a database.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from bench.beir import ROOT, beir_write, django_setup

_WORD = re.compile(r"\w[\w'-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _lexemes(text: str) -> set[str]:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s))", [settings.FTS_CONFIG, text]
        )
        return set(cursor.fetchone()[0])


def query_sets(corpus_dir: Path) -> dict[str, tuple[dict[str, str], dict]]:
    """name -> (query id -> text, qrels) for the real, rare, typo, paraphrase and mismatch
    sets."""
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
    rng = random.Random(11)

    def typo(word: str) -> str:
        if len(word) < 5 or not word.isalpha():
            return word
        i = rng.randrange(1, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]

    mismatch = {}
    for qid, text in queries.items():
        relevant = set().union(*(_lexemes(corpus[doc]) for doc in qrels[qid]))
        kept = [w for w in _WORD.findall(text) if not (_lexemes(w) and _lexemes(w) <= relevant)]
        if sum(bool(_lexemes(w)) for w in kept) >= 2:
            mismatch[qid] = " ".join(kept)
    return {
        "real": (queries, qrels),
        "rare": (rare, qrels),
        "typo": ({q: " ".join(map(typo, t.split())) for q, t in queries.items()}, qrels),
        "paraphrase": (_paraphrased(queries, frequency), qrels),
        "mismatch": (mismatch, {qid: qrels[qid] for qid in mismatch}),
    }


def short_corpora(corpus_dir: Path) -> dict[str, Path]:
    """SciFact rewritten as collections of short documents, with its queries and qrels, in
    BEIR format under var/bench-fusion/: `titles` (each document its title alone, as names of
    entities or headlines) and `lead` (each its abstract's first sentence, a short passage)."""
    directories = {
        name: ROOT / "var" / "bench-fusion" / f"corpus-{name}" for name in ("titles", "lead")
    }
    for directory in directories.values():
        (directory / "qrels").mkdir(parents=True, exist_ok=True)
        for name in ("queries.jsonl", "qrels/test.tsv"):
            (directory / name).write_bytes((corpus_dir / name).read_bytes())
    with (
        (corpus_dir / "corpus.jsonl").open() as rows,
        (directories["titles"] / "corpus.jsonl").open("w") as titles,
        (directories["lead"] / "corpus.jsonl").open("w") as lead,
    ):
        for line in rows:
            row = json.loads(line)
            first = _SENTENCE_END.split(row["text"].strip())[0]
            titles.write(json.dumps({"_id": row["_id"], "title": "", "text": row["title"]}) + "\n")
            lead.write(json.dumps({"_id": row["_id"], "title": "", "text": first}) + "\n")
    return directories


def _paraphrased(queries: dict[str, str], frequency: dict[str, int]) -> dict[str, str]:
    """Each query with every word that has a lexeme replaced by the nearest word of the
    corpus (in three or more documents) by embedding, of another lexeme and other first four
    letters."""
    import numpy as np

    from documents.embedding import embedder

    vocabulary = sorted(w for w, n in frequency.items() if n >= 3 and w.isalpha() and len(w) > 3)
    lexemes = {w: _lexemes(w) for w in vocabulary}
    vocabulary = [w for w in vocabulary if lexemes[w]]
    vectors = np.asarray(embedder().embed(vocabulary))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def nearest(word: str) -> str:
        own = _lexemes(word)
        if not own or not word.isalpha():
            return word
        vector = np.asarray(embedder().embed([word.lower()]))[0]
        for i in np.argsort(-(vectors @ vector))[:50]:
            other = vocabulary[i]
            if not lexemes[other] & own and other[:4] != word.lower()[:4]:
                return other
        return word

    return {qid: " ".join(map(nearest, text.split())) for qid, text in queries.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collection", required=True)
    parser.add_argument("--pgdata", type=Path, default=ROOT / "var" / "bench-pgdata")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/datasets/scifact")
    parser.add_argument(
        "--short",
        choices=("titles", "lead"),
        help="Score the real queries on this collection of short documents (short_corpora), "
        "loaded as --collection on the first run; give it a database of its own.",
    )
    args = parser.parse_args()
    django_setup(args.pgdata.resolve())

    from django.core.management import call_command
    from django.test import override_settings

    from accounts.models import User
    from documents.models import Collection
    from retrieval.calibration import SHARES, collection_calibrate
    from retrieval.evaluation import beir_queries_read, collection_evaluate

    user = User.objects.filter(is_superuser=True).order_by("pk").first()
    if args.short:
        # Its own database: BM25's statistics are those of every collection in it.
        directory = short_corpora(args.corpus)[args.short]
        if not Collection.objects.filter(name=args.collection).exists():
            call_command("import_beir", str(directory), collection=args.collection, sync=True)
    collection = Collection.objects.get(name=args.collection)

    def ndcg(directory: Path, mode: str, share: float | None = None, of=collection) -> float:
        result = collection_evaluate(
            user=user, directory=directory, collection=of, mode=mode, share=share
        )
        return result.ndcg_at_10

    def row(name: str, queries: int, directory: Path, of: Collection) -> None:
        dense, fulltext = ndcg(directory, "dense", of=of), ndcg(directory, "fulltext", of=of)
        adaptive = ndcg(directory, "hybrid", of=of)
        with override_settings(SEARCH_FUSION="convex"):
            convex = ndcg(directory, "hybrid", of=of)
        print(
            f"{name:<12} {queries:>7} {dense:>7.4f} {fulltext:>8.4f} {adaptive:>8.4f} "
            f"{convex:>9.4f} {adaptive - max(dense, fulltext):>+25.4f}",
            flush=True,
        )

    print(f"{'query set':<12} {'queries':>7} {'dense':>7} {'fulltext':>8} {'adaptive':>8} "
          f"{'convex .5':>9} {'adaptive - better branch':>25}")  # fmt: skip
    if args.short:
        row(f"real, {args.short}", len(beir_queries_read(directory)[0]), directory, collection)
        return
    sets = query_sets(args.corpus)
    for name, (queries, qrels) in sets.items():
        row(
            name,
            len(queries),
            beir_write(ROOT / "var" / "bench-fusion" / name, queries, qrels),
            collection,
        )
    queries, qrels = sets["real"]
    ids = sorted(queries)
    halves = [ids[0::2], ids[1::2]]
    scores = []
    for number, half in enumerate(halves):
        directory = beir_write(
            ROOT / "var" / "bench-fusion" / f"real-{number}",
            {qid: queries[qid] for qid in half},
            qrels,
        )
        scores.append({share: ndcg(directory, "hybrid", share) for share in SHARES})
    _report(scores, [len(half) for half in halves])
    calibration = collection_calibrate(collection)
    if calibration is None:
        print("calibration: the collection gives too few pseudo-queries")
    else:
        print(
            f"calibrated vector share {calibration.dense_weight} from "
            f"{calibration.pseudo_queries} pseudo-queries; MRR@10 by share: "
            + json.dumps(calibration.mrr)
            + f"; the default (each query's own share): {calibration.default_mrr}"
        )


def _report(scores: list[dict], sizes: list[int]) -> None:
    from retrieval.calibration import SHARES

    def whole(share) -> float:
        return sum(s[share] * n for s, n in zip(scores, sizes, strict=True)) / sum(sizes)

    fitted = [max(SHARES, key=lambda share, s=s: s[share]) for s in scores]
    cross = sum(scores[1 - i][fitted[i]] * sizes[1 - i] for i in range(2)) / sum(sizes)
    print("real, adaptive fusion at a fixed vector share: " + "  ".join(
        f"{share} {whole(share):.4f}" for share in SHARES))  # fmt: skip
    print(
        f"real, share fitted on labelled halves: {fitted[0]} (half 1), {fitted[1]} (half 2); "
        f"cross-validated nDCG@10 {cross:.4f}"
    )


if __name__ == "__main__":
    main()
