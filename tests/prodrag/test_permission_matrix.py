"""The permission matrix: every admin page (lists, filters, searches, change, add, delete,
history, guardian's object-permission pages, autocomplete, exports, the Quality page and its
CSVs) and every API endpoint,
for every role of docs/permissions.md. Each cell asserts its status, and that the body holds
no title, text or name of a document or collection the role may not read.

The world: collection "Xanadu" (owned by `owner`, managed by `manager` through a user grant and
by `managers_member` through a group grant) holds the "Aardvark" notice, granted to
`reader_one` alone, and the "Zebra" plan, which only X's owner and managers (and superusers)
read. Collection "Yonder" is granted to the group of `reader_group`. Collection "Quokka", with
its board minutes, only the superuser reads. The superuser and X's manager have asked about
everything, voted on their answers and so left a trail in the audit log."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.models import AuditEvent
from chat.models import Feedback, Message
from chat.services import answer_create, conversation_start, feedback_record, question_add
from chat.views import QUALITY_TABLES
from documents.models import Chunk, Collection, Document
from retrieval.models import EvaluationRun, EvaluationSet
from tests.accounts.factories import GroupFactory, UserFactory
from tests.api import api_client
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

pytestmark = pytest.mark.django_db

# The words that give away each object: its title or name, and its text.
SECRETS = {
    "aardvark": ("Aardvark notice", "aardvark"),
    "zebra": ("Zebra plan", "zebrawood"),
    "yak": ("Yak rota", "yakety"),
    "quokka": ("Quokka minutes", "quokkaberry"),
}
COLLECTIONS = {"x": "Xanadu", "y": "Yonder", "q": "Quokka board"}
# What each role may read (documents.authority).
READS = {
    "anonymous": set(),
    "inactive": set(),
    "reader_one": {"aardvark"},
    "reader_group": {"yak"},
    "owner": {"aardvark", "zebra"},
    "manager": {"aardvark", "zebra"},
    "managers_member": {"aardvark", "zebra"},
    "knowledge_manager": set(),
    "auditor": set(),
    "superuser": {"aardvark", "zebra", "yak", "quokka"},
}
# Which collections' names each role may see: a collection they read, or one in which they
# read a document.
SEES = {
    role: {c for c, docs in (("x", {"aardvark", "zebra"}), ("y", {"yak"}), ("q", {"quokka"}))
           if docs & reads}
    for role, reads in READS.items()
}  # fmt: skip
MANAGES_X = {"owner", "manager", "managers_member", "superuser"}
# Who may use the documents' admin pages: model permissions, or a collection managed.
ADMIN_MEMBERS = MANAGES_X | {"knowledge_manager"}
ROLES = list(READS)


@pytest.fixture
def world(db):
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    users = {"superuser": boss}
    for role in ROLES[1:-1]:
        users[role] = UserFactory(username=role, is_staff=True, is_active=role != "inactive")
    users["knowledge_manager"].user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["documents", "chat"])
    )
    users["auditor"].user_permissions.set(
        Permission.objects.filter(codename__in=["view_auditevent", "view_apitoken"])
    )
    # Everyone on staff may open the Quality page and list evaluation sets: what they see
    # there is the question.
    quality = Permission.objects.filter(codename__in=["view_quality", "view_evaluationset"])
    for user in users.values():
        user.user_permissions.add(*quality)
    x = CollectionFactory(name=COLLECTIONS["x"], owner=users["owner"])
    y = CollectionFactory(name=COLLECTIONS["y"], owner=boss)
    q = CollectionFactory(name=COLLECTIONS["q"], owner=boss)
    documents = {
        "aardvark": ingest(x, "aardvark.md", "# Aardvark notice\n\nThe aardvark parade is on."),
        "zebra": ingest(x, "zebra.md", "# Zebra plan\n\nThe zebrawood budget is ten million."),
        "yak": ingest(y, "yak.md", "# Yak rota\n\nThe yakety rota starts at dawn."),
        "quokka": ingest(q, "quokka.md", "# Quokka minutes\n\nThe quokkaberry merger closes."),
    }
    assign_perm("view_document", users["reader_one"], documents["aardvark"])
    assign_perm("view_document", users["inactive"], x)
    readers, managers = GroupFactory(name="y-readers"), GroupFactory(name="x-managers")
    users["reader_group"].groups.add(readers)
    users["managers_member"].groups.add(managers)
    assign_perm("view_document", readers, y)
    assign_perm("manage_collection", users["manager"], x)
    assign_perm("manage_collection", managers, x)
    # Questions in words of the documents, never their secret words: what a role typed itself
    # it may read back (a search echoes its query, the audit log keeps it).
    for asker, question in (
        (boss, "What is the budget, and when does the merger close?"),
        (users["manager"], "How big is the budget?"),
    ):
        asked = question_add(
            conversation=conversation_start(owner=asker), user=asker, text=question
        )
        answer = answer_create(question=asked, user=asker)
        feedback_record(answer=answer, user=asker, helpful=True, comment="useful")
    # A question over the board alone that its documents do not answer (a knowledge gap
    # named after the board), and an evaluation set with a run over each collection.
    asked = question_add(conversation=conversation_start(owner=boss), user=boss,
                         text="Who won the 1998 football world cup?", scope=[q.pk])  # fmt: skip
    answer_create(question=asked, user=boss)
    for collection in (x, y, q):
        evaluation_set = EvaluationSet.objects.create(
            name=f"{collection.name} questions", collection=collection, source="beir",
            queries={"q": "budget"}, qrels={"q": {"zebra.md": 1}},
        )  # fmt: skip
        EvaluationRun.objects.create(
            evaluation_set=evaluation_set, mode="hybrid", queries=1, ndcg_at_10=0.5,
            recall_at_100=1, mrr_at_10=0.5, latency_p50_ms=1, latency_p95_ms=1,
            embedding_model="m", embedding_runtime="onnx", trigger="command",
        )  # fmt: skip
    return {
        "users": users,
        "documents": {name: Document.objects.get(pk=d.pk) for name, d in documents.items()},
        "collections": {"x": x, "y": y, "q": q},
        "groups": {"readers": readers, "managers": managers},
    }


def _forbidden(role: str) -> list[str]:
    words = [w for name, pair in SECRETS.items() if name not in READS[role] for w in pair]
    words += [COLLECTIONS[c] for c in COLLECTIONS if c not in SEES[role]]
    return words


def assert_no_leak(role: str, response, where: str) -> None:
    assert response.status_code < 500, f"{role} {where}: {response.status_code}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode(errors="replace").lower()
    leaked = [word for word in _forbidden(role) if word.lower() in text]
    assert not leaked, f"{role} {where}: {leaked}"


def _admin_pages(world, me) -> list[tuple[str, str]]:
    """(url, what it is) of every admin page the world has, for one viewer."""
    admin = "admin:"
    pages = [(reverse("admin:index"), "index")]
    for app_model in (
        "documents_collection",
        "documents_document",
        "documents_chunk",
        "chat_feedback",
        "accounts_auditevent",
        "accounts_apitoken",
        "retrieval_evaluationset",
    ):
        listing = reverse(f"{admin}{app_model}_changelist")
        pages.append((listing, f"{app_model} list"))
        # Inside the secret words, so that the page's echo of the search is not one of them.
        for term in ("ebrawoo", "uokkaberr", "ebra", "uokka", str(world["documents"]["zebra"].pk)):
            pages.append((f"{listing}?q={term}", f"{app_model} search {term}"))
    for key, collection in world["collections"].items():
        pages.append(
            (
                reverse("admin:documents_document_changelist")
                + f"?collection__id__exact={collection.pk}",
                f"documents filtered by {key}",
            )
        )
    pages += [
        (reverse("admin:documents_collection_add"), "collection add"),
        (reverse("admin:documents_document_add"), "document add"),
        (
            reverse("admin:autocomplete")
            + "?app_label=documents&model_name=document&field_name=collection&term=",
            "autocomplete",
        ),
    ]
    objects = [("documents_collection", c) for c in world["collections"].values()]
    objects += [("documents_document", d) for d in world["documents"].values()]
    group = world["groups"]["managers"]
    for app_model, obj in objects:
        for page in ("change", "delete", "history", "permissions"):
            pages.append((reverse(f"{admin}{app_model}_{page}", args=[obj.pk]), f"{obj} {page}"))
        pages.append(
            (
                reverse(f"{admin}{app_model}_permissions_manage_user", args=[obj.pk, me.pk]),
                f"{obj} user permissions",
            )
        )
        pages.append(
            (
                reverse(f"{admin}{app_model}_permissions_manage_group", args=[obj.pk, group.pk]),
                f"{obj} group permissions",
            )
        )
    for evaluation_set in EvaluationSet.objects.all():
        change = reverse("admin:retrieval_evaluationset_change", args=[evaluation_set.pk])
        pages.append((change, "evaluation set page"))
    quality = reverse("admin-quality")
    pages.append((quality, "quality page"))
    for key, collection in world["collections"].items():
        pages.append((f"{quality}?collection={collection.pk}", f"quality page, feedback of {key}"))
    for table in QUALITY_TABLES:
        pages.append((reverse("admin-quality-csv", args=[table]), f"quality {table} CSV"))
    for chunk in Chunk.objects.all():
        pages.append((reverse("admin:documents_chunk_change", args=[chunk.pk]), "chunk page"))
    for feedback in Feedback.objects.all():
        pages.append((reverse("admin:chat_feedback_change", args=[feedback.pk]), "feedback page"))
    for event in AuditEvent.objects.all():
        pages.append((reverse("admin:accounts_auditevent_change", args=[event.pk]), "audit page"))
    return pages


@pytest.mark.parametrize("role", ROLES)
def test_no_admin_page_shows_what_the_role_may_not_read(client, world, role):
    me = world["users"].get(role) or UserFactory(username="nobody-in-particular")
    if role != "anonymous":
        client.force_login(me)
    for url, what in _admin_pages(world, me):
        assert_no_leak(role, client.get(url), f"GET {what} ({url})")
    every_event = list(AuditEvent.objects.values_list("pk", flat=True))
    for action in ("export_csv", "export_json"):
        response = client.post(
            reverse("admin:accounts_auditevent_changelist"),
            {"action": action, "_selected_action": every_event},
        )
        assert_no_leak(role, response, f"audit {action}")


@pytest.mark.parametrize("role", ROLES)
def test_the_admin_grants_each_role_what_the_authority_model_says(client, world, role):
    """The other half of the matrix: pages refused to a role are refused, pages a role may use
    work (a matrix that refused everything would pass the leak test)."""
    me = world["users"].get(role)
    if role != "anonymous":
        client.force_login(me)
    x = world["collections"]["x"]
    zebra = world["documents"]["zebra"]

    def status(name, obj):
        return client.get(reverse(f"admin:{name}", args=[obj.pk])).status_code

    def refused(sees: bool, missing: int) -> int:
        """Refused: to the login page without a login; as missing (the admin's 404, or its
        redirect to the index) an object the role may not read, where the role may use the
        documents' pages at all; else 403."""
        if role in ("anonymous", "inactive"):
            return 302
        return missing if not sees and (missing == 404 or role in ADMIN_MEMBERS) else 403

    manages = role in MANAGES_X
    sees_x, reads_zebra = "x" in SEES[role], "zebra" in READS[role]
    assert status("documents_collection_permissions", x) == (
        200 if manages else refused(sees_x, 404)
    )
    assert status("documents_document_permissions", zebra) == (
        200 if manages else refused(reads_zebra, 404)
    )
    assert status("documents_collection_delete", x) == (200 if manages else refused(sees_x, 302))
    assert status("documents_document_delete", zebra) == (
        200 if manages else refused(reads_zebra, 302)
    )
    response = client.post(
        reverse("admin:documents_collection_change", args=[x.pk]),
        {"name": "Taken", "owner": me.pk if me else "", "chunking": "structure",
         "chunk_tokens": 200, "chunk_overlap": 32},
    )  # fmt: skip
    assert (Collection.objects.get(pk=x.pk).name == "Taken") == manages, response.status_code
    granted = client.post(
        reverse("admin:documents_collection_permissions_manage_user", args=[x.pk, me.pk])
        if me
        else "/admin/",
        {"permissions": ["view_document", "manage_collection"]},
    )
    x.refresh_from_db()
    assert (me is not None and me.pk in x.manage_principals) == manages, granted.status_code


def _api_calls(world) -> list[tuple[str, str, dict | None]]:
    calls = [("get", "/api/v1/collections/", None), ("get", "/api/v1/documents/", None)]
    for collection in world["collections"].values():
        calls.append(("get", f"/api/v1/collections/{collection.pk}/", None))
        calls.append(("get", f"/api/v1/documents/?collection={collection.pk}", None))
    for document in world["documents"].values():
        for tail in ("", "versions/", "chunks/"):
            calls.append(("get", f"/api/v1/documents/{document.pk}/{tail}", None))
    for query in ("budget of ten million", "when the merger closes", "plan"):
        for mode in ("dense", "fulltext", "hybrid"):
            for per_document in (False, True):
                body = {"query": query, "mode": mode, "per_document": per_document}
                calls.append(("post", "/api/v1/search/", body))
        calls.append(("post", "/api/v1/search/", {"query": query, "expand": True}))
        calls.append(("post", "/api/v1/ask/", {"question": query}))
    for message in Message.objects.filter(role="assistant"):
        calls.append(("get", f"/api/v1/answers/{message.pk}/", None))
        conversation = message.conversation_id
        calls.append(("get", f"/api/v1/conversations/{conversation}/messages/", None))
    calls.append(("get", "/api/v1/conversations/", None))
    return calls


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("anonymous", "inactive")])
def test_no_api_response_shows_what_the_role_may_not_read(world, role):
    client = api_client(world["users"][role])
    for method, path, body in _api_calls(world):
        response = getattr(client, method)(path, body, format="json")
        assert_no_leak(role, response, f"{method} {path} {body or ''}")
        if method == "get" and re.fullmatch(r"/api/v1/documents/(\d+)/", path):
            document_id = int(path.split("/")[-2])
            readable = any(world["documents"][name].pk == document_id for name in READS[role])
            assert response.status_code == (200 if readable else 404), path


@pytest.mark.parametrize("role", ["anonymous", "inactive"])
def test_without_a_valid_login_the_api_and_chat_show_nothing(client, world, role):
    api = api_client()
    for method, path, body in _api_calls(world):
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code == 401, path
        assert_no_leak(role, response, path)
    if role == "inactive":
        assert not client.login(username="inactive", password="correct horse battery")
    for message in Message.objects.filter(role="assistant"):
        response = client.get(reverse("chat:conversation", args=[message.conversation_id]))
        assert response.status_code == 302
