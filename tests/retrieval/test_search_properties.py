"""Search returns only what the requester may read, and as much of it as asked: checked over
random worlds of users, groups, grants, revocations and queries against an independent
reading of the permission rules, through both paths of the statement (exact and index).

Index scans are off, so the index path's branches run as exact scans (the test database's dead
copies of rolled-back vectors would otherwise make HNSW's approximation part of the outcome);
that the index path walks HNSW and GIN is asserted from its plan in test_search, and HNSW's
recall under filters is measured by bench.search."""

import numpy as np
from django.conf import settings as django_settings
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import User
from documents.models import Chunk, ChunkEmbedding, DocumentVersion
from documents.services.index import chunk_search_vectors_refresh
from retrieval.selectors import passages_search
from tests.documents.worlds import DOCUMENTS, expected_visible, world_build, worlds

# Words whose English stem is the word itself and that no title contains, so that "a passage
# matches" reads as "its text has the word".
WORDS = ["budget", "contract", "laptop", "office", "salary", "ticket"]

searches = st.fixed_dictionaries(
    {
        "passages": st.lists(
            st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
            min_size=DOCUMENTS,
            max_size=DOCUMENTS * 2,
        ),
        "queries": st.lists(
            st.tuples(
                st.sampled_from(WORDS),
                st.sampled_from(["dense", "fulltext", "hybrid"]),
                st.integers(1, 12),
            ),
            min_size=1,
            max_size=3,
        ),
        "exact_below": st.sampled_from([0, 1000]),
        "seed": st.integers(0, 2**16),
    }
)


class SearchPermissionProperties(TestCase):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=worlds, search=searches)
    def test_results_are_readable_and_as_many_as_asked(self, world, search):
        paths = {"SEARCH_EXACT_BELOW": search["exact_below"]}
        paths["SEARCH_VECTOR_EXACT_BELOW"] = search["exact_below"]
        with override_settings(**paths):
            self.check_world(world, search)

    def check_world(self, world, search):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
        built = world_build(world)
        rng = np.random.default_rng(search["seed"])
        words_of = {}
        for number, words in enumerate(search["passages"]):
            document = built.documents[number % DOCUMENTS]
            version = DocumentVersion.objects.filter(document=document).first()
            if version is None:
                version = DocumentVersion.objects.create(
                    document=document, number=1, sha256=document.sha256, size=0, file="x.txt"
                )
                document.indexed_version = document.current_version = version
                document.save(update_fields=["indexed_version", "current_version"])
            vector = rng.normal(size=384)
            chunk = Chunk.objects.create(
                document=document,
                version=version,
                ordinal=number,
                text=" ".join(words),
                token_count=len(words),
            )
            ChunkEmbedding.objects.create(
                chunk=chunk,
                document=document,
                embedding=vector / np.linalg.norm(vector),
                embedding_model=django_settings.EMBEDDING_MODEL,
            )
            words_of[chunk.pk] = (number % DOCUMENTS, set(words))
        chunk_search_vectors_refresh(
            version_ids=DocumentVersion.objects.values_list("pk", flat=True)
        )

        self.assert_search(world, built, search, words_of)
        built.change()
        self.assert_search(world, built, search, words_of)

    def assert_search(self, world, built, search, words_of):
        for index, user in enumerate(built.users):
            user = User.objects.get(pk=user.pk)
            visible = expected_visible(world, index)
            for word, mode, k in search["queries"]:
                result = passages_search(user=user, query=word, k=k, mode=mode)
                got = [words_of[p.chunk_id] for p in result.passages]
                assert {document for document, _ in got} <= visible, (index, mode)
                readable = [c for c, (document, _) in words_of.items() if document in visible]
                if mode == "fulltext":
                    readable = [c for c in readable if word in words_of[c][1]]
                    assert all(word in words for _, words in got)
                assert len(got) == min(k, len(readable)), (index, mode, k)
