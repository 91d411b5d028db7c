"""A query word that matches none of the reader's passages changes nothing the reader gets back
(retrieval.statement's `terms`): not which passages, not their order, not any score, share or
coverage. Two worlds differ only in a word of a board document the reader may not read (the
word, or a made-up one of the same length in its place: corpus size and lengths are the same),
and every mode, with and without expansion, one passage per document, and a filter, must
answer the reader the same, field by field. (hybrid+rerank re-orders the hybrid candidates by
their text and the query's: the same candidates give it the same input.)"""

import pytest
from django.core.files.base import ContentFile

from documents.services.ingestion import documents_ingest
from documents.services.uploads import document_create
from tests.api import api_client
from tests.handbook import ingest
from tests.retrieval.paths import PATHS, path_take

pytestmark = pytest.mark.django_db

# Rare (one passage) and common in the board's documents, never in the handbook's.
BOARD = (
    "# Board minutes\n\nThe zanzibarco acquisition was discussed. Every quarterly figure "
    "stays confidential; quarterly targets are set by the board."
)
MADE_UP = BOARD.replace("zanzibarco", "qwyxzvpklo").replace("quarterly", "vqxwzyplmk")
QUERIES = [
    "annual leave hotel laptop canteen zanzibarco",
    "quarterly hotel costs refunded",
    "zanzibarco",
    '"annual leave" zanzibarco -quarterly',
]
REQUESTS = [
    {"mode": "hybrid"},
    {"mode": "fulltext"},
    {"mode": "dense"},
    {"mode": "hybrid", "per_document": True, "k": 3},
    {"mode": "hybrid", "expand": True},
    {"mode": "hybrid", "content_types": ["text/markdown"]},
]


def _board_text(people, text: str) -> None:
    board = people["board"]
    document, _ = document_create(
        collection=board,
        owner=board.owner,
        upload=ContentFile(text.encode(), name="quarterly.md"),
        enqueue=False,
    )
    documents_ingest(document_ids=[document.pk])


def _answers(member) -> list:
    client = api_client(member)
    found = []
    for query in QUERIES:
        for request in REQUESTS:
            response = client.post("/api/v1/search/", {"query": query, **request}, format="json")
            assert response.status_code == 200, response.content
            body = response.json()
            body.pop("seconds")
            found.append(((query, tuple(sorted(request.items()))), body))
    return found


@pytest.mark.parametrize("path", PATHS)
def test_a_word_only_unreadable_passages_hold_changes_nothing_in_any_mode(
    people, settings, chunks_vacuumed, path
):
    """GIVEN the board's "zanzibarco" and "quarterly", which the handbook reader cannot read
    WHEN they search with them, and again once those words are made-up ones in the board's
    text THEN every response is the same, every field of every passage."""
    path_take(settings, path)
    member = people["member"]
    ingest(people["board"], "quarterly.md", BOARD)
    with_words = _answers(member)
    _board_text(people, MADE_UP)
    without = _answers(member)

    assert [key for key, _ in with_words] == [key for key, _ in without]
    for (key, body), (_, other) in zip(with_words, without, strict=True):
        assert body == other, key
    # The reader does find their own passages with these queries: the check compared results.
    assert all(body["passages"] for (query, _), body in with_words if "hotel" in query)


def test_the_board_reads_its_own_words_and_the_coverage_counts_them(people):
    """The other side: for a reader of the board the same words do match and weigh."""
    boss = people["superuser"]
    ingest(people["board"], "quarterly.md", BOARD)
    client = api_client(boss)
    body = client.post(
        "/api/v1/search/", {"query": "zanzibarco acquisition", "mode": "hybrid"}, format="json"
    ).json()
    assert body["passages"][0]["title"] == "quarterly.md"
    assert body["passages"][0]["fulltext_coverage"] > 0
