"""Full text's statistics are kept per collection (retrieval.models): a search filtered to
some collections scores with theirs alone, as an index of those collections would, so that
loading another collection, however much its words overlap, changes nothing such a search
returns (which passages, their order, their scores), by every way the statement ranks; a
search over every collection scores with the whole corpus's."""

import pytest
from django.db import connection

from retrieval.selectors import passages_search
from retrieval.types import Filters
from tests.documents.factories import CollectionFactory
from tests.handbook import HANDBOOK, ingest
from tests.migrating import migrate
from tests.retrieval.paths import PATHS, path_take

pytestmark = pytest.mark.django_db

QUERIES = ["annual leave carry over", "hotel booking travel desk", "laptop lost stolen"]
# Another collection that holds the handbook's words, some of them often.
OTHER = {
    f"note-{n}.md": f"# Note {n}\n\nAnnual leave and hotel notes, leave after leave, "
    f"the travel desk and a laptop, item {n}."
    for n in range(12)
}


def _found(user, collection=None) -> list:
    filters = Filters(collections=(collection.pk,)) if collection else None
    return [
        [(passage.chunk_id, passage.score) for passage in passages_search(
            user=user, query=query, mode=mode, k=10, filters=filters).passages]
        for query in QUERIES
        for mode in ("fulltext", "hybrid")
    ]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_another_collection_changes_nothing_a_search_within_one_returns(
    handbook, boss, settings, chunks_vacuumed, path
):
    """GIVEN searches filtered to the handbook, and the same over every collection WHEN a
    collection sharing its words is loaded THEN the filtered ones return the same passages
    with the same scores; the unfiltered ones score with the new counts."""
    path_take(settings, path)
    collection = handbook["leave.md"].collection
    within, everywhere = _found(boss, collection), _found(boss)
    assert all(within)  # each search finds passages: the comparison compares results

    other = CollectionFactory(name="Notes")
    for name, text in OTHER.items():
        ingest(other, name, text)

    assert _found(boss, collection) == within
    assert _found(boss) != everywhere


# (stored, recounted from the passages): corpus-wide, and per collection.
COUNTS = {
    False: (
        "SELECT lexeme, passages FROM retrieval_lexemestat WHERE passages > 0",
        "SELECT u.lexeme, count(*) FROM documents_chunk c, unnest(c.search_vector) u "
        "GROUP BY u.lexeme",
    ),
    True: (
        "SELECT lexeme, collection_id, passages FROM retrieval_lexemestat WHERE passages > 0",
        "SELECT u.lexeme, d.collection_id, count(*) FROM documents_chunk c "
        "JOIN documents_document d ON d.id = c.document_id, unnest(c.search_vector) u "
        "GROUP BY u.lexeme, d.collection_id",
    ),
}


def _counts(per_collection: bool) -> tuple[dict, dict]:
    """The statistics table's counts, and the same recounted from the passages."""
    found = []
    with connection.cursor() as cursor:
        for sql in COUNTS[per_collection]:
            cursor.execute(sql)
            found.append({tuple(row[:-1]): row[-1] for row in cursor.fetchall()})
    return found[0], found[1]


def test_the_migration_counts_per_collection_and_its_reversal_for_the_corpus(
    migrated_back_and_forth,
):
    """GIVEN two collections' passages WHEN the statistics migration is reversed THEN the
    corpus-wide counts are those of the passages, kept by the old triggers; WHEN applied
    again THEN the per-collection counts are, kept by the new ones."""
    first, second = CollectionFactory(name="One"), CollectionFactory(name="Two")
    for name, text in HANDBOOK.items():
        ingest(first, name, text)
    ingest(second, "leave.md", HANDBOOK["leave.md"] + "\n\nAlso sabbaticals.")

    migrate([("retrieval", "0003_evaluation_sets")])
    kept, recounted = _counts(per_collection=False)
    assert kept == recounted and ("sabbat",) in kept
    ingest(second, "extra.md", "# Extra\n\nZeppelins are rare.")
    assert _counts(per_collection=False)[0][("zeppelin",)] == 1

    migrate()
    kept, recounted = _counts(per_collection=True)
    assert kept == recounted and ("zeppelin", second.pk) in kept
    assert ("sabbat", first.pk) not in kept
