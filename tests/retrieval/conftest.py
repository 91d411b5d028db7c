"""A small BEIR-format dataset, loaded with import_beir into the collection "mini"."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from tests.accounts.factories import UserFactory

CORPUS = [
    ("d1", "Aspirin", "Aspirin lowers fever and relieves headache."),
    ("d2", "Vitamin C", "Vitamin C supports the immune system against colds."),
    ("d3", "Statins", "Statins lower cholesterol and the risk of heart attack."),
    ("d4", "Insulin", "Insulin regulates the sugar level in the blood of diabetics."),
]
QUERIES = [
    ("q1", "Which drug relieves a headache?", {"d1": 1}),
    ("q2", "What lowers cholesterol?", {"d3": 1}),
    ("q3", "How is blood sugar regulated?", {"d4": 1, "d2": 1}),
]


@pytest.fixture
def dataset(tmp_path):
    UserFactory(is_superuser=True)
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in CORPUS)
    )
    (tmp_path / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": text}) for q, text, _ in QUERIES)
        + '\n{"_id": "unjudged", "text": "not in the qrels"}'
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{r}\n" for q, _, judged in QUERIES for d, r in judged.items())
    )
    call_command("import_beir", str(tmp_path), "--collection", "mini", "--sync", stdout=StringIO())
    return tmp_path
