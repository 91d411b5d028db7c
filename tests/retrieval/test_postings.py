"""Full text's impact-ordered postings: kept equal to the chunk table by its triggers, walked
to the same ranking as scoring every match, and deciding candidates from the reader's visible
passages alone."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import User
from documents.models import Chunk, Document, DocumentVersion
from documents.services.index import chunk_search_vectors_refresh
from retrieval.models import CorpusStat
from retrieval.selectors import passages_search
from tests.accounts.factories import UserFactory
from tests.documents.factories import DocumentFactory, DocumentVersionFactory

# The postings as the chunk table says they must be: one per (lexeme, passage), with the
# impact the trigger computes.
EXPECTED_POSTINGS = """
    SELECT u.lexeme,
           retrieval_impact(coalesce(array_length(u.positions, 1), 1), c.search_length,
                            s.posting_avgdl, s.posting_k1, s.posting_b),
           c.id, c.document_id
    FROM documents_chunk c CROSS JOIN retrieval_corpusstat s, unnest(c.search_vector) u"""
POSTINGS = "SELECT lexeme, impact, chunk_id, document_id FROM retrieval_posting"


def _postings_differ() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (({EXPECTED_POSTINGS} EXCEPT ALL {POSTINGS}) "  # noqa: S608
            f"UNION ALL ({POSTINGS} EXCEPT ALL {EXPECTED_POSTINGS})) differ"
        )
        return cursor.fetchone()[0]


def _postings_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM retrieval_posting")
        return cursor.fetchone()[0]


def test_postings_follow_every_insert_update_and_delete_of_passages(handbook):
    assert _postings_count() > 50
    assert _postings_differ() == 0
    leave = handbook["leave.md"]
    chunk = Chunk.objects.filter(document=leave).first()
    chunk.text = "An entirely different passage about parking permits"
    chunk.save(update_fields=["text"])
    chunk_search_vectors_refresh(version_ids=[chunk.version_id])
    assert _postings_differ() == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM retrieval_posting WHERE lexeme = 'permit'")
        assert cursor.fetchone()[0] == 1
    leave.delete()
    assert _postings_differ() == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM retrieval_posting WHERE document_id = %s", [leave.pk])
        assert cursor.fetchone()[0] == 0


def test_other_bm25_parameters_score_every_match_until_postings_rebuild(handbook, boss, settings):
    settings.SEARCH_EXACT_BELOW = settings.SEARCH_VECTOR_EXACT_BELOW = 0
    before = passages_search(user=boss, query="annual leave", k=5, mode="fulltext").passages
    settings.BM25_K1 = 1.5
    changed = passages_search(user=boss, query="annual leave", k=5, mode="fulltext").passages
    settings.SEARCH_POSTINGS = False
    scored = passages_search(user=boss, query="annual leave", k=5, mode="fulltext").passages
    assert [p.score for p in changed] == [p.score for p in scored]
    assert [p.score for p in changed] != [p.score for p in before]
    out = io.StringIO()
    call_command("postings_rebuild", stdout=out)
    assert f"{_postings_count():,} postings rebuilt (k1 1.5, b 0.4)" in out.getvalue()
    assert CorpusStat.objects.get().posting_k1 == 1.5
    assert _postings_differ() == 0
    settings.SEARCH_POSTINGS = True
    walked = passages_search(user=boss, query="annual leave", k=5, mode="fulltext").passages
    assert [p.score for p in walked] == [p.score for p in scored]


# Words whose English stem is the word itself and that no title contains. A few are common,
# so that their postings run longer than a shallow walk reads.
WORDS = ["budget", "contract", "laptop", "office", "salary", "ticket", "zanzibarco"]
passages = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4), min_size=0, max_size=30
)


class PostingsProperties(TestCase):
    """A reader sees one document of three. Searches go through the index path (the gate at
    0), ranking from the postings, and the exact path (the gate at 1,000)."""

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        visible=passages.filter(bool),
        hidden=passages,
        more_hidden=passages,
        query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True),
        gate=st.sampled_from([0, 1000]),
    )
    # A word only hidden passages have, beside one most passages have: once, the rare word
    # alone decided the candidates, hiding the reader's matches.
    @example(
        visible=[["budget"]] * 10,
        hidden=[["zanzibarco"]] + [["budget"]] * 15,
        more_hidden=[],
        query=["budget", "zanzibarco"],
        gate=1000,
    )
    def test_matches_never_depend_on_passages_the_reader_cannot_see(
        self, visible, hidden, more_hidden, query, gate
    ):
        """GIVEN a reader's passages and passages in documents they cannot read
        WHEN passages they cannot read are added or removed
        THEN the reader's full-text matches (every visible passage with a query word) stay
        the same, and the postings rank them as scoring every match does."""
        reader = UserFactory()
        mine = _document(owner=reader)
        theirs = [_document(owner=UserFactory()), _document(owner=UserFactory())]
        words_of = _passages(mine, visible)
        _passages(theirs[0], hidden)
        expected = {pk for pk, words in words_of.items() if set(words) & set(query)}
        text = " ".join(query)
        with self.settings(SEARCH_EXACT_BELOW=gate, SEARCH_VECTOR_EXACT_BELOW=gate):
            for change in ("before", "added", "removed"):
                if change == "added":
                    _passages(theirs[1], more_hidden)
                elif change == "removed":
                    Chunk.objects.filter(document__in=theirs).delete()
                reader = User.objects.get(pk=reader.pk)
                every = passages_search(user=reader, query=text, k=1000, mode="fulltext")
                top = passages_search(user=reader, query=text, k=3, mode="fulltext")
                assert {p.chunk_id for p in every.passages} == expected, change
                with self.settings(SEARCH_POSTINGS=False):
                    scored = passages_search(user=reader, query=text, k=3, mode="fulltext")
                assert [round(p.score, 9) for p in top.passages] == [
                    round(p.score, 9) for p in scored.passages
                ], change


def _document(*, owner) -> Document:
    document = DocumentFactory(owner=owner, collection__owner=owner)
    version = DocumentVersionFactory(document=document)
    document.indexed_version = document.current_version = version
    document.save(update_fields=["indexed_version", "current_version"])
    return document


def _passages(document: Document, texts: list[list[str]]) -> dict[int, list[str]]:
    version = DocumentVersion.objects.get(document=document)
    chunks = Chunk.objects.bulk_create(
        Chunk(
            document=document,
            version=version,
            ordinal=Chunk.objects.filter(document=document).count() + number,
            text=" ".join(words),
            token_count=len(words),
        )
        for number, words in enumerate(texts)
    )
    chunk_search_vectors_refresh(version_ids=[version.pk])
    return {chunk.pk: words for chunk, words in zip(chunks, texts, strict=True)}


pytestmark = pytest.mark.django_db
