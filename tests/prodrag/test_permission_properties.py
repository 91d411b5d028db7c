"""Over random worlds (users, groups, memberships, read and manage grants, rarely an open flag),
one user who is not a superuser uses every surface: searches in every mode, asks, reads back
answers and the conversation (API, chat page), lists documents and passages in the admin, and
uploads files whose names and bytes clash with documents they may not read. Then the world
narrows under them: a grant they read through is revoked, one of their memberships ends, a
manage grant they hold goes, or they are deactivated; and they use every surface again,
asking a follow-up in the same conversation. Every body they get holds only the titles and
text of documents they may read at that moment (docs/permissions.md, read independently of
the ACL arrays by tests.documents.worlds), every search finds every document they may read
(each one's passage matches), and an upload into a collection they do not manage stores
nothing.

Each document's title and text carry a word of its own ("mark3x"), so a leak is a substring."""

import hashlib

import numpy as np
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
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
        # Never the superuser (who reads everything): the index among the others.
        "user": st.integers(0, USERS - 2),
        "upload_into": st.integers(0, 1),
        # The upload clashes with this document: by name, or by name and bytes.
        "clash_with": st.integers(0, DOCUMENTS - 1),
        "same_bytes": st.booleans(),
        "exact_below": st.sampled_from([0, 1000]),
        "deactivate": st.integers(0, 3).map(lambda n: n == 0),
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
    @settings(max_examples=150)
    @given(world=worlds, act=actions)
    def test_every_body_a_user_gets_holds_only_what_they_may_read(self, world, act):
        paths = {"SEARCH_EXACT_BELOW": act["exact_below"]}
        paths["SEARCH_VECTOR_EXACT_BELOW"] = act["exact_below"]
        with override_settings(**paths):
            self.check(world, act)

    def check(self, world, act):
        built = world_build(world)
        self.index(built, np.random.default_rng(act["seed"]))
        me = [u for u in range(USERS) if u != world["superuser"]][act["user"]]
        user = built.users[me]
        user.is_staff = True
        user.save()
        user.user_permissions.add(
            *Permission.objects.filter(
                codename__in=["view_document", "view_chunk"], content_type__app_label="documents"
            )
        )
        api = api_client(user, scope="write")
        asked = self.surfaces(world, me, user, api, asked=[])
        self.upload(built, world, me, act, api)

        built.narrow(me, deactivate=act["deactivate"])
        user.refresh_from_db()

        self.surfaces(world, me, user, api, asked=asked)

    def surfaces(self, world, me, user, api, *, asked: list[dict]) -> list[dict]:
        """Every surface once, as the world now is: searches (each complete), an ask (a
        follow-up in the same conversation, when there is one), every earlier answer and the
        conversation read back, the chat page, the admin's lists. Returns the asks so far."""
        active = me not in world["inactive"]
        visible = expected_visible(world, me)
        for mode in MODES:
            body = {"query": "budget mark", "mode": mode, "k": 20, "per_document": True}
            response = api.post("/api/v1/search/", body, format="json")
            self.assert_shows_only(world, me, response)
            if active:
                found = {m for m in range(DOCUMENTS) if mark(m) in response.content.decode()}
                assert found == visible, (mode, found, visible)
            else:
                assert response.status_code == 401
        if active and len(visible) < DOCUMENTS:
            # A word only unreadable passages hold changes nothing (retrieval.statement): its
            # full-text side is that of a word no passage holds (the vector side differs with
            # the query's words whatever the corpus holds).
            hidden = min(set(range(DOCUMENTS)) - visible)
            sides = []
            for word in (mark(hidden), mark(DOCUMENTS + 1)):
                body = {"query": f"budget {word}", "mode": "hybrid", "k": 20}
                passages = api.post("/api/v1/search/", body, format="json").json()["passages"]
                sides.append(
                    {
                        p["chunk_id"]: (p["bm25"], p["fulltext_rank"], p["fulltext_coverage"])
                        for p in passages
                    }
                )
            assert sides[0] == sides[1]
        question = {"question": "And what is the budget?" if asked else "What is the budget?"}
        if asked:
            question["conversation"] = asked[-1]["conversation"]
        response = api.post("/api/v1/ask/", question, format="json")
        self.assert_shows_only(world, me, response)
        if active:
            assert response.status_code == 201, response.content
            asked = [*asked, response.json()]
        else:
            assert response.status_code == 401
        page = Client()
        page.force_login(user)
        for earlier in asked:
            for path in (
                f"/api/v1/answers/{earlier['answer']['id']}/",
                f"/api/v1/conversations/{earlier['conversation']}/messages/",
            ):
                self.assert_shows_only(world, me, api.get(path))
            conversation = reverse("chat:conversation", args=[earlier["conversation"]])
            self.assert_shows_only(world, me, page.get(conversation))
        self.assert_shows_only(world, me, page.get("/admin/documents/document/"))
        self.assert_shows_only(world, me, page.get("/admin/documents/chunk/?q=mark"))
        return asked

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
