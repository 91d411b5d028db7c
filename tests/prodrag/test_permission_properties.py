"""Over random worlds (users, groups, memberships, read and manage grants, open flags), one user
uses every surface: searches in every mode, asks, uploads files whose names and bytes clash
with documents they may not read, then loses a grant and a membership and reads back their
answers and conversation, and lists documents in the admin. Every body they get holds only
the titles and text of documents they may read at that moment (docs/permissions.md, read
independently of the ACL arrays by tests.documents.worlds), and an upload into a collection
they do not manage stores nothing.

Each document's title and text carry a word of its own ("mark3"), so a leak is a substring."""

import hashlib

import numpy as np
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from documents.models import Chunk, ChunkEmbedding, Document, DocumentVersion
from documents.services.index import chunk_search_vectors_refresh
from tests.api import api_client
from tests.documents.worlds import (
    DOCUMENTS,
    USERS,
    expected_manages,
    expected_visible,
    world_build,
    worlds,
)

MODES = ["dense", "fulltext", "hybrid"]

actions = st.fixed_dictionaries(
    {
        "user": st.integers(0, USERS - 1),
        "upload_into": st.integers(0, 1),
        # The upload clashes with this document: by name, or by name and bytes.
        "clash_with": st.integers(0, DOCUMENTS - 1),
        "same_bytes": st.booleans(),
        "exact_below": st.sampled_from([0, 1000]),
        "seed": st.integers(0, 2**16),
    }
)


def mark(index: int) -> str:
    return f"mark{index}x"


def _bytes(index: int) -> bytes:
    """What document `index` holds (its sha256 says so)."""
    return f"bytes of document {index}".encode()


@override_settings(CONTEXT_MIN_SIMILARITY=-1.0)
class PermissionProperties(TestCase):
    @settings(max_examples=500)
    @given(world=worlds, act=actions)
    def test_every_body_a_user_gets_holds_only_what_they_may_read(self, world, act):
        paths = {"SEARCH_EXACT_BELOW": act["exact_below"]}
        paths["SEARCH_VECTOR_EXACT_BELOW"] = act["exact_below"]
        with override_settings(**paths):
            self.check(world, act)

    def check(self, world, act):
        built = world_build(world)
        self.index(built, np.random.default_rng(act["seed"]))
        me = act["user"]
        user = built.users[me]
        user.is_staff = True
        user.save()
        user.user_permissions.add(
            *Permission.objects.filter(
                codename__in=["view_document", "view_chunk"], content_type__app_label="documents"
            )
        )
        api = api_client(user, scope="write")
        if user.is_active:
            self.assert_shows_only(world, me, api.post("/api/v1/search/", {"query": "budget"}))
            for mode in MODES:
                body = {"query": "budget mark", "mode": mode, "k": 20, "per_document": True}
                self.assert_shows_only(world, me, api.post("/api/v1/search/", body, format="json"))
            asked = api.post("/api/v1/ask/", {"question": "What is the budget?"}, format="json")
            assert asked.status_code == 201
            self.assert_shows_only(world, me, asked)
        self.upload(built, world, me, act, api)

        built.change()  # a grant revoked, a membership ended

        if user.is_active:
            answer = asked.json()["answer"]
            for path in (
                f"/api/v1/answers/{answer['id']}/",
                f"/api/v1/conversations/{asked.json()['conversation']}/messages/",
            ):
                self.assert_shows_only(world, me, api.get(path))
        page = Client()
        page.force_login(user)
        self.assert_shows_only(world, me, page.get("/admin/documents/document/"))
        self.assert_shows_only(world, me, page.get("/admin/documents/chunk/?q=mark"))

    @staticmethod
    def index(built, rng):
        """A passage per document, naming its mark, with a random vector: every search
        finds every document it may, in every mode."""
        for number, document in enumerate(built.documents):
            document.title = f"Title {mark(number)}"
            document.sha256 = hashlib.sha256(_bytes(number)).hexdigest()
            version = DocumentVersion.objects.create(
                document=document, number=1, sha256=document.sha256, size=0, file="x.txt"
            )
            document.indexed_version = document.current_version = version
            document.save(update_fields=["title", "sha256", "indexed_version", "current_version"])
            chunk = Chunk.objects.create(
                document=document,
                version=version,
                ordinal=0,
                text=f"The budget is {mark(number)}.",
                token_count=4,
            )
            vector = rng.normal(size=django_settings.EMBEDDING_DIMENSIONS)
            ChunkEmbedding.objects.create(
                chunk=chunk,
                document=document,
                embedding=vector / np.linalg.norm(vector),
                embedding_model=django_settings.EMBEDDING_MODEL,
            )
        chunk_search_vectors_refresh(
            version_ids=DocumentVersion.objects.values_list("pk", flat=True)
        )

    def upload(self, built, world, me, act, api):
        """Upload a file named like another document (with its bytes or not) into a
        collection: refused and stored nowhere unless the user manages the collection; there,
        the clash meets only documents the user may read."""
        collection = built.collections[act["upload_into"]]
        target = built.documents[act["clash_with"]]
        data = _bytes(act["clash_with"]) if act["same_bytes"] else b"new bytes"
        before = (Document.objects.count(), DocumentVersion.objects.count())
        response = api.post(
            "/api/v1/documents/",
            {"file": SimpleUploadedFile(target.source, data), "collection": collection.pk},
        )
        manages = expected_manages(world, me, act["upload_into"])
        if not manages:
            assert response.status_code in (401, 403, 404), response.content
            assert (Document.objects.count(), DocumentVersion.objects.count()) == before
        else:
            assert response.status_code in (200, 201), response.content
        self.assert_shows_only(world, me, response)

    @staticmethod
    def assert_shows_only(world, me, response):
        assert response.status_code < 500, response.content[:500]
        body = response.content.decode(errors="replace")
        visible = expected_visible(world, me)
        leaked = [mark(i) for i in range(DOCUMENTS) if i not in visible and mark(i) in body]
        assert not leaked, (me, leaked, response.request["PATH_INFO"])
