"""The retrieval statement on real indexed documents: modes, citations, fusion, filters, both
execution paths, full-text statistics, and what the search refuses."""

import json
import math
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from guardian.shortcuts import assign_perm

from documents.models import Chunk, ChunkEmbedding, Document, DocumentVersion
from retrieval import selectors
from retrieval.models import CollectionStat, CorpusStat, LexemeStat
from retrieval.selectors import SearchError, passages_search
from retrieval.statement import Statement, is_question, statement_build
from retrieval.types import Filters, Fusion
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory
from tests.fake_openai import FakeOpenAI
from tests.handbook import ingest

pytestmark = pytest.mark.django_db

LEAVE_QUESTION = "How many days of annual leave does an employee get?"


@pytest.mark.parametrize("mode", ["dense", "fulltext", "hybrid"])
def test_each_mode_ranks_the_answer_first_with_what_a_citation_needs(handbook, boss, mode):
    result = passages_search(user=boss, query=LEAVE_QUESTION, k=3, mode=mode)

    best = result.passages[0]
    leave = handbook["leave.md"]
    assert (best.document_id, best.title, best.collection) == (leave.pk, leave.title, "Handbook")
    assert best.heading_path[-1] == "Annual leave"
    assert (best.version, best.version_id) == (1, leave.indexed_version_id)
    version_text = DocumentVersion.objects.get(pk=best.version_id).text
    assert best.text in version_text[best.char_start : best.char_end]
    assert "27 days" in best.text
    assert len(result.passages) == 3


def _ranks(user, mode):
    passages = passages_search(user=user, query=LEAVE_QUESTION, k=50, mode=mode).passages
    return {p.chunk_id: p for p in passages}


def test_reciprocal_rank_fusion_adds_each_rankings_weighted_reciprocal_rank(handbook, boss):
    """Weights 1 and 0.5 are shares 2/3 and 1/3."""
    dense, fulltext = _ranks(boss, "dense"), _ranks(boss, "fulltext")
    fusion = Fusion(method="rrf", rrf_k=10, dense_weight=1.0, fulltext_weight=0.5)
    fused = passages_search(user=boss, query=LEAVE_QUESTION, k=50, fusion=fusion).passages

    assert {p.chunk_id for p in fused} == set(dense) | set(fulltext)
    for passage in fused:
        expected = (2 / 3) / (10 + list(dense).index(passage.chunk_id) + 1)
        if passage.chunk_id in fulltext:
            expected += (1 / 3) / (10 + list(fulltext).index(passage.chunk_id) + 1)
        assert passage.score == pytest.approx(expected)
    assert [p.score for p in fused] == sorted((p.score for p in fused), reverse=True)


def test_convex_fusion_averages_min_max_normalised_scores(handbook, boss):
    dense, fulltext = _ranks(boss, "dense"), _ranks(boss, "fulltext")
    fusion = Fusion(method="convex", rrf_k=60, dense_weight=3.0, fulltext_weight=1.0)
    fused = passages_search(user=boss, query=LEAVE_QUESTION, k=50, fusion=fusion).passages

    def normalised(ranking, chunk_id, score):
        scores = [score(p) for p in ranking.values()]
        if chunk_id not in ranking:
            return 0.0
        return (score(ranking[chunk_id]) - min(scores)) / (max(scores) - min(scores))

    for passage in fused:
        expected = (
            3 * normalised(dense, passage.chunk_id, lambda p: p.similarity)
            + normalised(fulltext, passage.chunk_id, lambda p: p.bm25)
        ) / 4
        assert passage.score == pytest.approx(expected, abs=1e-6)


def _peak(scores: list[float]) -> float:
    """How far the best stand out: the drop to rank 10 over the drop to the last."""
    if len(scores) < 2:
        return 1.0
    spread = scores[0] - scores[-1]
    return (scores[0] - scores[min(10, len(scores)) - 1]) / spread if spread else 0.0


def _full_match(query: str, fts_config: str) -> float:
    """BM25 of an average passage holding each lexeme of the query once: the sum of the IDFs
    of those some passage holds."""
    counts = dict(
        LexemeStat.objects.filter(passages__gt=0)
        .values("lexeme")
        .annotate(n=Sum("passages"))
        .values_list("lexeme", "n")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s))", [fts_config, query]
        )
        lexemes = [lexeme for lexeme in cursor.fetchone()[0] if lexeme in counts]
    passages = CorpusStat.objects.get().passages
    return sum(
        math.log(1 + (passages - counts[lexeme] + 0.5) / (counts[lexeme] + 0.5))
        for lexeme in lexemes
    )


@pytest.mark.parametrize(
    ("query", "fulltext_factor"),
    [(LEAVE_QUESTION, 0.5), ("annual leave carryover rulez", 1.0), ("leave carryover?", 0.5)],
)
def test_adaptive_fusion_sets_the_share_per_query_and_scales_full_text_by_its_coverage(
    handbook, boss, settings, query, fulltext_factor
):
    """The default fusion: the vector share is the vector ranking's peak over the sum of both
    rankings' peaks, and a question gives full text half of the rest; full text's normalised
    score is scaled by its best passage's BM25 over that of an average passage holding the
    query's lexemes once (at most 1); a word no passage holds ("rulez") counts for neither."""
    assert settings.SEARCH_FUSION == "adaptive"
    dense = passages_search(user=boss, query=query, k=50, mode="dense").passages
    fulltext = passages_search(user=boss, query=query, k=50, mode="fulltext").passages
    fused = passages_search(user=boss, query=query, k=50).passages
    similarities = [p.similarity for p in dense]
    bm25 = [p.bm25 for p in fulltext]
    share = 1 - fulltext_factor * _peak(bm25) / (_peak(similarities) + _peak(bm25))
    coverage = min(1.0, bm25[0] / _full_match(query, settings.FTS_CONFIG))
    assert 0 < share < 1 and 0 < coverage <= 1

    def normalised(scores, value):
        return 0.0 if value is None else (value - min(scores)) / (max(scores) - min(scores))

    dense_ids, fulltext_ids = {p.chunk_id for p in dense}, {p.chunk_id for p in fulltext}
    assert {p.chunk_id for p in fused} == dense_ids | fulltext_ids
    for passage in fused:
        expected = share * normalised(
            similarities, passage.similarity if passage.chunk_id in dense_ids else None
        ) + (1 - share) * coverage * normalised(bm25, passage.bm25)
        assert passage.score == pytest.approx(expected, abs=1e-6)
        assert passage.dense_share == pytest.approx(share)
        assert passage.fulltext_coverage == pytest.approx(coverage)


def test_adaptive_fusion_follows_full_text_where_one_passage_holds_a_rare_identifier(
    handbook, boss
):
    """A query of an identifier that one passage holds: full text finds that passage alone,
    which stands out entirely, and hybrid search ranks it first, whatever vectors make of the
    identifier."""
    ingest(
        handbook[next(iter(handbook))].collection,
        "asset.md",
        "# Asset register\n\nThe projector in room 4 is asset QX-7731-B, insured until 2031.",
    )
    query = "QX-7731-B"
    fulltext = passages_search(user=boss, query=query, k=5, mode="fulltext").passages
    assert [p.source for p in fulltext] == ["asset.md"]
    assert passages_search(user=boss, query=query, k=5).passages[0].source == "asset.md"


@pytest.mark.parametrize(
    ("query", "question"),
    [
        ("How many days of annual leave?", True),
        ("what is the carryover limit", True),
        ("  Does the canteen open on Sundays", True),
        ("leave carryover?", True),
        ("Is travel insured? ", True),
        ("Give me all policies on travel", True),
        ("list comprehension", False),
        ("annual leave carryover", False),
        ("Will Smith films", False),
        ("howto leave", False),
        ("QX-7731-B", False),
    ],
)
def test_a_question_is_told_by_its_question_mark_or_its_first_word(query, question):
    assert is_question(query) is question


def test_a_zero_weight_leaves_the_other_rankings_order(handbook, boss):
    dense = passages_search(user=boss, query=LEAVE_QUESTION, k=8, mode="dense").passages
    fusion = Fusion(method="rrf", rrf_k=60, dense_weight=1.0, fulltext_weight=0.0)
    fused = passages_search(user=boss, query=LEAVE_QUESTION, k=8, fusion=fusion).passages
    assert [p.chunk_id for p in fused] == [p.chunk_id for p in dense]


def test_collapse_keeps_each_documents_best_passage(handbook, boss):
    result = passages_search(user=boss, query="policy", k=10, mode="hybrid", collapse=True)
    documents = [p.document_id for p in result.passages]
    assert len(documents) == len(set(documents)) == len(handbook)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (lambda docs, other: Filters(collections=(other.collection_id,)), {"other.md"}),
        (
            lambda docs, other: Filters(document_ids=(docs["travel.md"].pk, other.pk)),
            {"travel.md", "other.md"},
        ),
        (lambda docs, other: Filters(content_types=("text/plain",)), {"canteen.txt"}),
        (lambda docs, other: Filters(languages=("de",)), {"other.md"}),
        (lambda docs, other: Filters(metadata={"team": "legal"}), {"other.md"}),
        (lambda docs, other: Filters(properties={"author": "Ada"}), {"security.md"}),
        (
            lambda docs, other: Filters(created_after=timezone.now() - timedelta(days=1)),
            {"leave.md", "travel.md", "security.md", "canteen.txt", "other.md"},
        ),
        (lambda docs, other: Filters(created_before=timezone.now() - timedelta(days=1)), set()),
        (
            lambda docs, other: Filters(
                modified_after=timezone.now() - timedelta(days=400),
                modified_before=timezone.now() - timedelta(days=300),
            ),
            {"travel.md"},
        ),
    ],
)
@pytest.mark.parametrize("mode", ["dense", "fulltext", "hybrid"])
@pytest.mark.parametrize("exact_below", [0, 1000])
def test_filters_hold_in_every_branch_and_path(
    chunks_vacuumed, handbook, boss, filters, expected, mode, exact_below, settings
):
    settings.SEARCH_EXACT_BELOW = settings.SEARCH_VECTOR_EXACT_BELOW = exact_below
    other = ingest(
        CollectionFactory(),
        "other.md",
        "# Urlaub\n\nJeder Mitarbeiter hat 30 Tage Urlaub und annual leave days.",
        metadata={"team": "legal"},
    )
    Document.objects.filter(pk=other.pk).update(language="de")
    Document.objects.filter(pk=handbook["security.md"].pk).update(properties={"author": "Ada"})
    modified = (timezone.now() - timedelta(days=365)).isoformat()
    Document.objects.filter(pk=handbook["travel.md"].pk).update(properties={"modified": modified})
    names = {doc.pk: name for name, doc in handbook.items()} | {other.pk: "other.md"}

    result = passages_search(
        user=boss,
        query="leave days travel passwords lunch Urlaub",
        k=50,
        mode=mode,
        filters=filters(handbook, other),
    )
    assert {names[p.document_id] for p in result.passages} == expected


@pytest.mark.parametrize("mode", ["dense", "fulltext", "hybrid"])
def test_the_exact_path_and_the_index_path_rank_alike(handbook, boss, mode, settings):
    """The two paths compute the same ranking. Index scans are off here, so the index path's
    branches run as exact scans: the test database holds many dead copies of these very
    vectors (every test ingests the same handbook and rolls back), and duplicate vectors are
    HNSW's worst case. That the index path walks HNSW and GIN is asserted from its plan below;
    HNSW's recall under filters is bench.search's figure."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
    results = {}
    for exact_below in (1000, 0):
        settings.SEARCH_EXACT_BELOW = settings.SEARCH_VECTOR_EXACT_BELOW = exact_below
        passages = passages_search(user=boss, query=LEAVE_QUESTION, k=5, mode=mode).passages
        results[exact_below] = [p.chunk_id for p in passages]
    assert results[0] == results[1000]


def _statement(user_principals, exact_below, **overrides):
    return Statement(
        **{
            "mode": "hybrid",
            "text": LEAVE_QUESTION,
            "vector": selectors._query_vector(LEAVE_QUESTION),
            "principals": user_principals,
            "filters": Filters(),
            "fusion": selectors.fusion_default(),
            "k": 5,
            "depth": 100,
            "collapse": False,
            "model": selectors.embedder().model,
            "dimensions": 384,
            "fts_config": "english",
            "exact_below": exact_below,
            "vector_exact_below": exact_below,
            "bm25_k1": 0.9,
            "bm25_b": 0.4,
            "postings": True,
        }
        | overrides
    )


def _plan(spec):
    sql, params = statement_build(spec)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def fresh_chunk_table(transactional_db):
    """No dead rows from earlier tests' rollbacks to weigh on the table's statistics."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE documents_chunkembedding, documents_chunk")


@pytest.fixture
def crowded_handbook(fresh_chunk_table, handbook, settings):
    """The handbook among 300 random-vector neighbours per passage, freshly analysed: on a
    table of a handbook's size the planner rightly prefers reading it whole, and which plan
    it picks would follow whatever statistics autovacuum last gathered."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO documents_chunk (document_id, version_id, ordinal, text, token_count, "
            "heading_path, metadata) "
            "SELECT c.document_id, c.version_id, c.ordinal + 1000 * n, '', 0, '{}', '{}' "
            "FROM documents_chunk c, generate_series(1, 300) n"
        )
        cursor.execute(
            "INSERT INTO documents_chunkembedding (chunk_id, document_id, embedding_model, "
            "embedding) SELECT ch.id, ch.document_id, %s, "
            "(SELECT array_agg(random() - 0.5) FROM generate_series(1, 384 + 0 * ch.id))::vector "
            "FROM documents_chunk ch WHERE ch.ordinal >= 1000",
            [settings.EMBEDDING_MODEL],
        )
        cursor.execute("ANALYZE documents_chunk, documents_chunkembedding, documents_document")


@pytest.mark.django_db(transaction=True)
def test_the_gate_runs_one_path_and_the_index_path_walks_hnsw_and_the_postings(crowded_handbook):
    # A few thousand narrow rows are cheaper to read whole than through any index: without
    # sequential scans the planner shows whether the statement can use the indexes at all
    # (the partial HNSW index's model predicate and cast, the postings' order, the GIN's
    # operator), which at scale bench.search shows it does.
    # Sorts are discouraged too: in a full run, after other tests, the planner once ranked the
    # vectors without the HNSW index (a sort over another scan, the only alternative when
    # sequential scans are off). An HNSW index that could not serve the ORDER BY would still
    # lose to the sort, so the assertion keeps its meaning.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        index_plan = _plan(_statement(None, exact_below=0))
        # Postings computed with another k1 cannot rank: then every match is scored.
        stale_plan = _plan(_statement(None, exact_below=0, bm25_k1=1.5))
        exact_plan = _plan(_statement(None, exact_below=1000))
    assert "Index Scan using chunk_hnsw_" in index_plan
    assert _posting_scans(index_plan) and not any(
        "never executed" in line for line in _posting_scans(index_plan)
    )
    # The postings' ranking is proven exact: scoring every match through the GIN index
    # never runs.
    assert "never executed" in _line(index_plan, "Bitmap Index Scan on chunk_search_vector")
    assert all("never executed" in line for line in _posting_scans(stale_plan))
    assert "never executed" not in _line(stale_plan, "Bitmap Index Scan on chunk_search_vector")
    # The index branches sit under a one-time filter that is false: never executed.
    assert "never executed" in _line(exact_plan, "chunk_hnsw_")
    assert all("never executed" in line for line in _posting_scans(exact_plan))


def _posting_scans(plan: str) -> list[str]:
    """The plan's scans of the postings that sum them (not the lookups of a word's highest
    impact, a backward scan that every full-text search makes)."""
    return [
        line
        for line in plan.splitlines()
        if "retrieval_posting_pkey" in line and "Backward" not in line
    ]


def _line(plan: str, needle: str) -> str:
    return next(line for line in plan.splitlines() if needle in line)


def test_web_search_syntax_excludes_words_and_requires_phrases(handbook, boss):
    def found(query):
        passages = passages_search(user=boss, query=query, k=20, mode="fulltext").passages
        return {p.heading_path[-1] for p in passages}

    assert {"Annual leave", "Sick leave"} <= found("leave")
    assert "Sick leave" not in found("leave -sickness")
    assert found('"travel desk"') == {"Booking"}


def test_full_text_statistics_follow_inserts_new_versions_moves_and_deletes(handbook):
    """Per collection and for the whole corpus, as recounted from the passages."""

    def recomputed():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT u.lexeme, d.collection_id, count(*) FROM documents_chunk c "
                "JOIN documents_document d ON d.id = c.document_id, unnest(c.search_vector) u "
                "GROUP BY u.lexeme, d.collection_id"
            )
            lexemes = {(lexeme, collection): n for lexeme, collection, n in cursor.fetchall()}
        chunks = Chunk.objects.exclude(search_vector=None)
        collections = {
            row["document__collection_id"]: (row["n"], row["length"])
            for row in chunks.values("document__collection_id").annotate(
                n=Count("pk"), length=Sum("search_length")
            )
        }
        length = sum(chunks.values_list("search_length", flat=True))
        return lexemes, collections, (chunks.count(), length)

    def stored():
        lexemes = {
            (row.lexeme, row.collection_id): row.passages
            for row in LexemeStat.objects.exclude(passages=0)
        }
        collections = {
            row.collection_id: (row.passages, row.length)
            for row in CollectionStat.objects.exclude(passages=0)
        }
        corpus = CorpusStat.objects.get()
        return lexemes, collections, (corpus.passages, corpus.length)

    def words() -> set[str]:
        return {lexeme for lexeme, _ in stored()[0]}

    assert stored() == recomputed() and stored()[2][0] > 0
    leave = handbook["leave.md"]
    ingest(leave.collection, "leave.md", "# Leave policy\n\nNow 30 days of sabbatical leave.")
    assert stored() == recomputed() and "sabbat" in words()
    other = CollectionFactory(name="Other")
    travel = handbook["travel.md"]
    Document.objects.filter(pk=travel.pk).update(collection=other)  # a move takes its counts
    assert stored() == recomputed() and other.pk in stored()[1]
    travel.delete()
    assert stored() == recomputed() and "hotel" not in words() and other.pk not in stored()[1]


def test_documents_embedded_by_another_model_are_named_and_left_to_full_text(handbook, boss):
    travel = handbook["travel.md"]
    ChunkEmbedding.objects.filter(document=travel).update(embedding_model="old-model")
    DocumentVersion.objects.filter(pk=travel.indexed_version_id).update(embedding_model="old-model")
    selectors.cache.delete(selectors._MISMATCH_CACHE_KEY)

    dense = passages_search(user=boss, query="hotel costs refund", k=20, mode="dense")
    fulltext = passages_search(user=boss, query="hotel costs refund", k=20, mode="fulltext")

    assert travel.pk not in {p.document_id for p in dense.passages}
    assert travel.pk in {p.document_id for p in fulltext.passages}
    assert dense.warnings == [
        f"1 document(s) of collection 'Handbook' were embedded by another model than "
        f"{selectors.embedder().model}; only full-text search finds them until "
        "`manage.py reembed --collection 'Handbook'` has run."
    ]


def test_the_embedded_otherwise_warning_counts_only_documents_the_reader_may_read(handbook, boss):
    """GIVEN two handbook documents embedded by an old model WHEN a reader of one of them,
    and of an up-to-date one, searches THEN the warning counts one document, not two."""
    for name in ("travel.md", "security.md"):
        document = handbook[name]
        ChunkEmbedding.objects.filter(document=document).update(embedding_model="old-model")
        DocumentVersion.objects.filter(pk=document.indexed_version_id).update(
            embedding_model="old-model"
        )
    selectors.cache.delete(selectors._MISMATCH_CACHE_KEY)
    reader = UserFactory()
    assign_perm("view_document", reader, handbook["travel.md"])
    assign_perm("view_document", reader, handbook["leave.md"])

    mine = passages_search(user=reader, query="hotel costs", mode="dense").warnings
    everyone = passages_search(user=boss, query="hotel costs", mode="dense").warnings

    assert len(mine) == 1 and mine[0].startswith("1 document(s) of collection 'Handbook'")
    assert len(everyone) == 1 and everyone[0].startswith("2 document(s) of collection")


def test_a_user_without_access_to_the_collection_sees_no_collection_names(handbook):
    travel = handbook["travel.md"]
    ChunkEmbedding.objects.filter(document=travel).update(embedding_model="old-model")
    DocumentVersion.objects.filter(pk=travel.indexed_version_id).update(embedding_model="old-model")
    selectors.cache.delete(selectors._MISMATCH_CACHE_KEY)
    outsider = UserFactory()
    result = passages_search(user=outsider, query="hotel", k=5)
    assert result.passages == [] and result.warnings == []


def test_the_query_is_embedded_once_for_repeated_searches(handbook, boss, monkeypatch):
    model = selectors.embedder()
    calls = []
    original = model.embed
    monkeypatch.setattr(model, "embed", lambda texts: calls.append(texts) or original(texts))
    for _ in range(3):
        passages_search(user=boss, query="a question asked three times", k=3)
    assert calls == [["a question asked three times"]]


def test_a_search_costs_three_queries_for_a_regular_user(handbook, django_assert_num_queries):
    reader = UserFactory()
    assign_perm("view_document", reader, handbook["leave.md"].collection)
    passages_search(user=reader, query=LEAVE_QUESTION, k=3)  # model and cache warm
    # The user's groups; SAVEPOINT, set_config, the statement, RELEASE (in the test's
    # transaction the atomic block is a savepoint); the mismatch check is cached.
    with django_assert_num_queries(5):
        result = passages_search(user=reader, query=LEAVE_QUESTION, k=3)
    assert len(result.passages) == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "sparse"}, "Unknown mode 'sparse'"),
        ({"k": 0}, "k must be between 1 and 1000"),
        ({"query": "   "}, "The query is empty"),
        ({"mode": "hybrid+rerank"}, "needs a re-ranker: set PRODRAG_RERANKER"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(boss, arguments, message):
    with pytest.raises(SearchError, match=message):
        passages_search(user=boss, **({"query": "leave", "k": 5} | arguments))


def test_the_search_command_shows_a_user_only_what_they_may_read(handbook):
    reader = UserFactory(username="reader")
    assign_perm("view_document", reader, handbook["leave.md"])

    def run(*args):
        out = StringIO()
        call_command("search", *args, stdout=out)
        return out.getvalue()

    out = run(LEAVE_QUESTION, "--user", "reader", "--k", "3")
    first = out.splitlines()[0]
    assert first.startswith(f"[1] {handbook['leave.md'].title} (v1; ") and "Annual leave" in first
    assert "27 days" in out and "travel desk" not in out
    outsider = UserFactory().username
    assert f"Nothing that {outsider} may read matches." in run("hotel", "--user", outsider)
    with pytest.raises(CommandError, match="No collection named 'Nope'"):
        run("leave", "--user", "reader", "--collection", "Nope")
    with pytest.raises(CommandError, match="Not an ISO 8601 date"):
        run("leave", "--user", "reader", "--created-after", "yesterday")


@pytest.mark.parametrize("mode", ["dense", "fulltext", "hybrid", "hybrid+rerank"])
@pytest.mark.parametrize(
    "options",
    [{}, {"expand": True}, {"collapse": True}, {"filters": "handbook"}],
    ids=["plain", "expand", "per_document", "filtered"],
)
def test_a_restricted_reader_on_the_index_path_gets_only_readable_passages(
    chunks_vacuumed, people, handbook, settings, llm_endpoint, mode, options
):
    """GIVEN a reader granted the travel policy alone, and the index path forced (HNSW and GIN
    walks, index scans on) WHEN they search in every mode, with expansion (its rephrasings
    come from the LLM), one passage per document, a collection filter, and LLM re-ranking
    THEN every passage, and everything sent to the LLM on their behalf, is the travel policy's."""
    from retrieval import rerank

    settings.SEARCH_EXACT_BELOW = settings.SEARCH_VECTOR_EXACT_BELOW = 0
    settings.RERANKER, settings.RERANK_DEPTH = "llm", 4
    rerank.reranker.cache_clear()
    reader = UserFactory()
    assign_perm("view_document", reader, handbook["travel.md"])
    FakeOpenAI.replies = (
        ["leave days for employees\nhotel refund per night"]
        if options.get("expand")
        else [json.dumps({"scores": [5, 4, 3, 2]})]
    )
    if options.get("filters"):
        options = {"filters": Filters(collections=(people["handbook"].pk, people["board"].pk))}

    result = passages_search(
        user=reader, query="annual leave days and hotel costs", k=10, mode=mode, **options
    )
    rerank.reranker.cache_clear()

    assert result.passages
    assert {p.document_id for p in result.passages} == {handbook["travel.md"].pk}
    sent = json.dumps(FakeOpenAI.requests)
    assert "27 days" not in sent and "30 days" not in sent
