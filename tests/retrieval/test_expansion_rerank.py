"""Query expansion (LLM rephrasings, or keyword feedback without an LLM) and re-ranking
(local cross-encoder, or the LLM), against real indexed documents; the LLM is the fake
OpenAI server."""

import json

import pytest
from django.conf import settings as django_settings
from sentence_transformers import CrossEncoder

from retrieval import rerank
from retrieval.selectors import passages_search
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_reranker_cache():
    rerank.reranker.cache_clear()
    yield
    rerank.reranker.cache_clear()


def test_without_an_llm_expansion_adds_feedback_words_as_a_full_text_path(handbook, boss):
    plain = passages_search(user=boss, query="holiday entitlement", k=5)
    expanded = passages_search(user=boss, query="holiday entitlement", k=5, expand=True)

    assert plain.expansions == []
    [keywords] = expanded.expansions
    assert keywords.startswith("holiday entitlement ") and "leav" in keywords.split()
    assert expanded.passages[0].heading_path[-1] == "Annual leave"
    assert len(expanded.passages) == 5


def test_with_an_llm_expansion_searches_its_rephrasings_and_fuses_them(
    handbook, boss, llm_endpoint
):
    FakeOpenAI.replies = [
        json.dumps({"queries": ["paid annual leave days", "holiday entitlement", "vacation"]})
    ]
    result = passages_search(user=boss, query="holiday entitlement", k=5, expand=True)

    assert result.expansions == ["paid annual leave days", "vacation"]
    assert "holiday entitlement" in FakeOpenAI.requests[0]["messages"][1]["content"]
    assert result.passages[0].heading_path[-1] == "Annual leave"
    scores = [p.score for p in result.passages]
    assert scores == sorted(scores, reverse=True) and scores[0] <= 3 / 61


def test_a_failing_llm_falls_back_to_keyword_expansion(handbook, boss, llm_endpoint, settings):
    FakeOpenAI.failures = [500] * (settings.LLM_RETRIES + 1)
    result = passages_search(user=boss, query="holiday entitlement", k=5, expand=True)
    assert len(result.expansions) == 1 and result.expansions[0].startswith("holiday")


def test_llm_reranking_orders_by_the_models_grades(
    handbook, boss, llm_endpoint, settings, no_reranker_cache
):
    settings.RERANKER, settings.RERANK_DEPTH = "llm", 4
    hybrid = passages_search(user=boss, query="leave", k=4).passages
    FakeOpenAI.replies = [json.dumps({"scores": [1, 9, 3, 7]})]

    reranked = passages_search(user=boss, query="leave", k=3, mode="hybrid+rerank").passages

    assert [p.chunk_id for p in reranked] == [hybrid[i].chunk_id for i in (1, 3, 2)]
    assert [p.score for p in reranked] == [9, 7, 3]
    assert "[4]" in FakeOpenAI.requests[-1]["messages"][1]["content"]


def test_a_malformed_llm_grade_keeps_the_hybrid_order(
    handbook, boss, llm_endpoint, settings, no_reranker_cache
):
    settings.RERANKER, settings.RERANK_DEPTH = "llm", 4
    hybrid = passages_search(user=boss, query="leave", k=4).passages
    FakeOpenAI.replies = ["These all look relevant to me."]
    reranked = passages_search(user=boss, query="leave", k=4, mode="hybrid+rerank").passages
    assert [p.chunk_id for p in reranked] == [p.chunk_id for p in hybrid]


def test_a_local_cross_encoder_orders_by_its_scores(
    handbook, boss, settings, no_reranker_cache, tmp_path
):
    """A cross-encoder saved to a local directory (here: MiniLM with a fresh one-output head,
    so its scores are arbitrary but fixed) decides the order."""
    CrossEncoder(str(django_settings.EMBEDDING_MODEL_PATH), num_labels=1).save(str(tmp_path))
    settings.RERANKER, settings.RERANK_DEPTH = str(tmp_path), 6
    hybrid = passages_search(user=boss, query="leave", k=6).passages

    reranked = passages_search(user=boss, query="leave", k=6, mode="hybrid+rerank").passages

    model = rerank.reranker().model
    scores = model.predict([("leave", p.text) for p in hybrid])
    expected = [hybrid[i].chunk_id for i in sorted(range(6), key=lambda i: -scores[i])]
    assert [p.chunk_id for p in reranked] == expected
