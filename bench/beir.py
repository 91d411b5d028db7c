"""What the quality benchmarks share: a Django set up on a database of their own, and query
sets (with their corpus, or beside one) written in BEIR format for `manage.py evaluate`."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def django_setup(pgdata: Path) -> None:
    os.environ["PRODRAG_PGDATA"] = str(pgdata)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)  # one log line per search


def beir_write(
    directory: Path, queries: dict[str, str], qrels: dict, corpus: dict[str, dict] | None = None
) -> Path:
    """queries: id → text; qrels: query id → {document id: relevance}; corpus: id →
    {"title", "text"}, or None to leave the directory's corpus as it is."""
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    if corpus is not None:
        with (directory / "corpus.jsonl").open("w") as out:
            for doc, row in corpus.items():
                out.write(json.dumps({"_id": doc, **row}) + "\n")
    with (directory / "queries.jsonl").open("w") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (directory / "qrels" / "test.tsv").open("w") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid in queries:
            for doc, relevance in qrels[qid].items():
                out.write(f"{qid}\t{doc}\t{relevance}\n")
    return directory
