"""Degraded search: when the embedding model or the vector ranking fails, full text alone
answers, and the response says so."""

import pytest
from django.conf import settings as django_settings

from chat.services import answer_create
from documents.embedding import EmbeddingUnavailable
from retrieval import selectors, statement
from retrieval.selectors import FALLBACK_WARNING, passages_search
from tests.api import api_client
from tests.chat.asking import question_add

pytestmark = pytest.mark.django_db

QUESTION = "How many days of annual leave does an employee get?"


class BrokenEmbedder:
    model = django_settings.EMBEDDING_MODEL
    dimensions = django_settings.EMBEDDING_DIMENSIONS

    def embed(self, texts):
        raise EmbeddingUnavailable("connection refused")


@pytest.fixture
def embedder_down(monkeypatch):
    monkeypatch.setattr(selectors, "embedder", BrokenEmbedder)
    selectors._query_vector_cached.cache_clear()
    yield
    selectors._query_vector_cached.cache_clear()


@pytest.fixture
def vector_ranking_broken(monkeypatch):
    """The vector branch's distance fails inside the database, as a damaged index would."""
    distance = statement._distance_sql

    def failing(spec, params):
        distance(spec, params)
        return "(ch.id / 0)::float8"

    monkeypatch.setattr(statement, "_distance_sql", failing)


def _leave_found(result, handbook):
    assert result.passages
    assert result.passages[0].document_id == handbook["leave.md"].pk
    assert all(p.dense_rank is None and p.fulltext_rank for p in result.passages)


def test_without_the_embedding_model_search_is_full_text_only_and_flagged(handbook, embedder_down):
    result = passages_search(user=handbook["leave.md"].owner, query=QUESTION, k=3)
    assert result.fallback == "fulltext"
    assert result.warnings == [FALLBACK_WARNING]
    _leave_found(result, handbook)


def test_a_failing_vector_ranking_falls_back_to_full_text(handbook, vector_ranking_broken):
    result = passages_search(user=handbook["leave.md"].owner, query=QUESTION, k=3, mode="dense")
    assert result.fallback == "fulltext"
    _leave_found(result, handbook)


def test_full_text_search_that_fails_is_not_masked(handbook, monkeypatch):
    monkeypatch.setattr(statement, "_BM25", "(ch.id / 0)::float8")
    with pytest.raises(Exception, match="division by zero"):
        passages_search(user=handbook["leave.md"].owner, query=QUESTION, k=3, mode="fulltext")


def test_the_api_flags_a_full_text_only_result(handbook, embedder_down):
    response = api_client(handbook["leave.md"].owner).post(
        "/api/v1/search/", {"query": QUESTION, "k": 3}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] == "fulltext"
    assert body["warnings"] == [FALLBACK_WARNING]
    assert body["passages"][0]["document_id"] == handbook["leave.md"].pk


def test_an_answer_from_full_text_alone_says_so(handbook, embedder_down):
    owner = handbook["leave.md"].owner
    question = question_add(conversation=None, user=owner, text=QUESTION, scope=())
    answer = answer_create(question=question, user=owner)
    assert answer.notice.startswith(FALLBACK_WARNING)
    assert "27 days" in answer.text
    assert answer.generation["search_fallback"] == "fulltext"
