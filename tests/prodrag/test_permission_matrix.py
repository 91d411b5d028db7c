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

from collections.abc import Callable
from functools import partial

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.models import AuditEvent
from chat.models import Feedback, Message
from chat.services import answer_create, feedback_record
from chat.views import QUALITY_TABLES
from documents.models import Chunk, Collection, Document
from retrieval.models import EvaluationRun, EvaluationSet
from sources.models import Source, SourceRun
from tests.accounts.factories import GroupFactory, UserFactory
from tests.api import api_client
from tests.chat.asking import question_add
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

pytestmark = pytest.mark.django_db

# The words that give away each object: its title (for Markdown, the file name), its heading
# and its text.
SECRETS = {
    "aardvark": ("aardvark.md", "Aardvark notice", "aardvark"),
    "zebra": ("zebra.md", "Zebra plan", "zebrawood"),
    "yak": ("yak.md", "Yak rota", "yakety"),
    "quokka": ("quokka.md", "Quokka minutes", "quokkaberry"),
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
# The questions asked in the world, by the collections they could draw on when asked: a role
# sees one only where it reads in all of them (chat.selectors.answers_countable_by). The
# auditor sees every question in the audit trail, which records what was asked.
QUESTIONS = {
    "What is the budget, and when does the merger close?": {"x", "y", "q"},  # the superuser's
    "How big is the budget?": {"x"},  # X's manager's, who reads in X alone
    "Who won the 1998 football world cup?": {"q"},  # asked in the board alone
}
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
        asked = question_add(conversation=None, user=asker, text=question)
        answer = answer_create(question=asked, user=asker)
        feedback_record(answer=answer, user=asker, helpful=True, comment="useful")
    # A question over the board alone that its documents do not answer (a knowledge gap
    # named after the board), and an evaluation set with a run over each collection.
    asked = question_add(conversation=None, user=boss,
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
    # Sources of X (its managers' to see and sync) and of the board (the superuser's alone).
    sources = {
        key: Source.objects.create(
            name=name, kind="folder", location=f"/srv/{name}", collection=collection, owner=boss
        )
        for key, name, collection in (("x", "x-share", x), ("q", "board-feed", q))
    }
    for source in sources.values():
        SourceRun.objects.create(source=source, outcome="done", seen=1, added=1)
    return {
        "sources": sources,
        "users": users,
        "documents": {name: Document.objects.get(pk=d.pk) for name, d in documents.items()},
        "collections": {"x": x, "y": y, "q": q},
        "groups": {"readers": readers, "managers": managers},
    }


def _forbidden(role: str) -> list[str]:
    words = [w for name, words in SECRETS.items() if name not in READS[role] for w in words]
    words += [COLLECTIONS[c] for c in COLLECTIONS if c not in SEES[role]]
    if role != "auditor":
        words += [text for text, reach in QUESTIONS.items() if not reach <= SEES[role]]
    return words


def assert_no_leak(role: str, response, where: str, expected: int | None = None) -> None:
    status = response.status_code
    if expected is None:
        assert status < 500, f"{role} {where}: {status}"
    else:
        assert status == expected, f"{role} {where}: {status}, expected {expected}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode(errors="replace").lower()
    leaked = [word for word in _forbidden(role) if word.lower() in text]
    assert not leaked, f"{role} {where}: {leaked}"


# Model permissions beyond the documents' pages: who may open which other admin list.
LISTS = {
    "documents_chunk": {"knowledge_manager", "superuser"},
    "chat_feedback": {"knowledge_manager", "superuser"},
    "accounts_auditevent": {"auditor", "superuser"},
    "accounts_apitoken": {"auditor", "superuser"},
    "retrieval_evaluationset": set(ROLES) - {"anonymous", "inactive"},
    "sources_source": MANAGES_X,  # managing a collection opens the Sources pages
}
OUT = {"anonymous", "inactive"}  # no valid login: the admin's sign-in page, always


def _list_status(role: str, app_model: str) -> int:
    allowed = LISTS.get(app_model, ADMIN_MEMBERS)
    return 200 if role in allowed else 403


def _object_status(role: str, page: str, *, sees: bool, changes: bool) -> int:
    """What an object's page answers (docs/permissions.md): its manager (or the document's
    changer) uses it; otherwise a role that may not read the object meets it as missing (the
    admin's redirect to the index, or 404 on guardian's pages), and one that may, 403. Change
    and delete pages refuse a role without the documents' pages (no model permission, nothing
    managed) with 403 before they look the object up."""
    if changes:
        return 200
    if page in ("change", "delete") and role not in ADMIN_MEMBERS:
        return 403
    if sees:
        return 403
    return 404 if "permissions" in page else 302


def _admin_pages(world, me):
    """(url, what it is, the status each role gets) of every admin page the world has, for
    one viewer."""
    pages = [(reverse("admin:index"), "index", lambda role: 200)]
    for app_model in (
        "documents_collection",
        "documents_document",
        "documents_chunk",
        "chat_feedback",
        "accounts_auditevent",
        "accounts_apitoken",
        "retrieval_evaluationset",
        "sources_source",
    ):
        listing = reverse(f"admin:{app_model}_changelist")
        status = partial(_list_status, app_model=app_model)
        pages.append((listing, f"{app_model} list", status))
        # Inside the secret words, so that the page's echo of the search is not one of them.
        for term in ("ebrawoo", "uokkaberr", "ebra", "uokka", str(world["documents"]["zebra"].pk)):
            pages.append((f"{listing}?q={term}", f"{app_model} search {term}", status))
    for key, collection in world["collections"].items():
        pages.append(
            (
                reverse("admin:documents_document_changelist")
                + f"?collection__id__exact={collection.pk}",
                f"documents filtered by {key}",
                partial(_list_status, app_model="documents_document"),
            )
        )
    pages += [
        (
            reverse("admin:documents_collection_add"),
            "collection add",
            lambda role: 200 if role in ("knowledge_manager", "superuser") else 403,
        ),
        (
            reverse("admin:documents_document_add"),
            "document add",
            lambda role: 200 if role in MANAGES_X else 403,  # only into a managed collection
        ),
        (
            reverse("admin:autocomplete")
            + "?app_label=documents&model_name=document&field_name=collection&term=",
            "autocomplete",
            partial(_list_status, app_model="documents_document"),
        ),
    ]
    objects = [("documents_collection", key, c) for key, c in world["collections"].items()]
    objects += [("documents_document", name, d) for name, d in world["documents"].items()]
    group = world["groups"]["managers"]
    for app_model, key, obj in objects:
        in_x = key == "x" or (key in READS["owner"])

        def status(role, page, key=key, in_x=in_x):
            sees = key in (SEES[role] if len(key) == 1 else READS[role])
            changes = role == "superuser" or (in_x and role in MANAGES_X)
            return _object_status(role, page, sees=sees, changes=changes)

        for page in ("change", "delete", "history", "permissions"):
            url = reverse(f"admin:{app_model}_{page}", args=[obj.pk])
            pages.append((url, f"{key} {page}", partial(status, page=page)))
        pages.append(
            (
                reverse(f"admin:{app_model}_permissions_manage_user", args=[obj.pk, me.pk]),
                f"{key} user permissions",
                partial(status, page="permissions"),
            )
        )
        pages.append(
            (
                reverse(f"admin:{app_model}_permissions_manage_group", args=[obj.pk, group.pk]),
                f"{key} group permissions",
                partial(status, page="permissions"),
            )
        )
    for key, source in world["sources"].items():

        def source_status(role, page, key=key):
            """A source's pages are its collection's managers'; to anyone else it is missing
            (the admin's redirect), except that change and delete refuse a role without the
            Sources pages before they look it up."""
            if role == "superuser" or (key == "x" and role in MANAGES_X):
                return 200
            return 403 if page != "history" and role not in MANAGES_X else 302

        for page in ("change", "delete", "history"):
            url = reverse(f"admin:sources_source_{page}", args=[source.pk])
            pages.append((url, f"source of {key} {page}", partial(source_status, page=page)))
    for key, collection in world["collections"].items():
        evaluation_set = EvaluationSet.objects.get(collection=collection)
        change = reverse("admin:retrieval_evaluationset_change", args=[evaluation_set.pk])
        pages.append(
            (
                change,
                f"evaluation set of {key}",
                lambda role, k=key: 200 if k in SEES[role] else 302,
            )
        )
    quality = reverse("admin-quality")
    pages.append((quality, "quality page", lambda role: 200))
    for key, collection in world["collections"].items():
        pages.append(
            (f"{quality}?collection={collection.pk}", f"quality, feedback of {key}", lambda r: 200)
        )
    for table in QUALITY_TABLES:
        pages.append(
            (reverse("admin-quality-csv", args=[table]), f"quality {table} CSV", lambda r: 200)
        )

    def chunk_status(role, name):
        if role not in LISTS["documents_chunk"]:
            return 403
        return 200 if name in READS[role] else 302

    names = {document.pk: name for name, document in world["documents"].items()}
    for chunk in Chunk.objects.all():
        name = names[chunk.document_id]
        url = reverse("admin:documents_chunk_change", args=[chunk.pk])
        pages.append((url, f"chunk of {name}", partial(chunk_status, name=name)))
    # Feedback: the knowledge manager reads nothing, so no rating is theirs to see.
    feedback_status = {"superuser": 200, "knowledge_manager": 302}
    for feedback in Feedback.objects.all():
        url = reverse("admin:chat_feedback_change", args=[feedback.pk])
        pages.append((url, "feedback page", lambda role: feedback_status.get(role, 403)))
    for event in AuditEvent.objects.all():
        url = reverse("admin:accounts_auditevent_change", args=[event.pk])
        pages.append(
            (
                url,
                f"audit event {event.action}",
                partial(_list_status, app_model="accounts_auditevent"),
            )
        )
    return pages


def test_no_admin_page_shows_what_a_role_may_not_read_and_each_answers_as_it_should(client, world):
    """Every admin page, for every role in turn (one world for them all): the status the
    rules give that role, and nothing in the body the role may not read."""
    for role in ROLES:
        me = world["users"].get(role) or UserFactory(username="nobody-in-particular")
        client.logout()
        if role != "anonymous":
            client.force_login(me)
        for url, what, status in _admin_pages(world, me):
            expected = 302 if role in OUT else status(role)
            assert_no_leak(role, client.get(url), f"GET {what} ({url})", expected)
        every_event = list(AuditEvent.objects.values_list("pk", flat=True))
        for action in ("export_csv", "export_json"):
            response = client.post(
                reverse("admin:accounts_auditevent_changelist"),
                {"action": action, "_selected_action": every_event},
            )
            exported = role in LISTS["accounts_auditevent"]
            assert_no_leak(
                role,
                response,
                f"audit {action}",
                200 if exported else (302 if role in OUT else 403),
            )


def test_the_admin_grants_each_role_what_the_authority_model_says(client, world):
    """The other half of the matrix: pages refused to a role are refused, pages a role may use
    work (a matrix that refused everything would pass the leak test). Each role's changes are
    rolled back before the next role's turn."""
    for role in ROLES:
        client.logout()
        with transaction.atomic():
            _grants_check(client, world, role)
            transaction.set_rollback(True)


def _grants_check(client, world, role):
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
    assert (Collection.objects.get(pk=x.pk).name == "Taken") == manages, (role, response)
    granted = client.post(
        reverse("admin:documents_collection_permissions_manage_user", args=[x.pk, me.pk])
        if me
        else "/admin/",
        {"permissions": ["view_document", "manage_collection"]},
    )
    x.refresh_from_db()
    assert (me is not None and me.pk in x.manage_principals) == manages, (role, granted)


def _api_calls(world) -> list[tuple[str, str, dict | None, Callable[[str], int]]]:
    """(method, path, body, the status each role gets) of every API call the world has."""

    def ok(role: str) -> int:
        return 200

    calls = [("get", "/api/v1/collections/", None, ok), ("get", "/api/v1/documents/", None, ok)]
    for key, collection in world["collections"].items():
        calls.append(
            (
                "get",
                f"/api/v1/collections/{collection.pk}/",
                None,
                lambda role, k=key: 200 if k in SEES[role] else 404,
            )
        )
        calls.append(("get", f"/api/v1/documents/?collection={collection.pk}", None, ok))
    for name, document in world["documents"].items():
        for tail in ("", "versions/", "chunks/"):
            calls.append(
                (
                    "get",
                    f"/api/v1/documents/{document.pk}/{tail}",
                    None,
                    lambda role, n=name: 200 if n in READS[role] else 404,
                )
            )
    for query in ("budget of ten million", "when the merger closes", "plan"):
        for mode in ("dense", "fulltext", "hybrid"):
            for per_document in (False, True):
                body = {"query": query, "mode": mode, "per_document": per_document}
                calls.append(("post", "/api/v1/search/", body, ok))
        calls.append(("post", "/api/v1/search/", {"query": query, "expand": True}, ok))
        calls.append(("post", "/api/v1/ask/", {"question": query}, lambda role: 201))
    roles = {user.pk: role for role, user in world["users"].items()}
    for message in Message.objects.filter(role="assistant").select_related("conversation"):
        asker = roles[message.conversation.owner_id]

        def own(role, asker=asker):
            return 200 if role == asker else 404

        calls.append(("get", f"/api/v1/answers/{message.pk}/", None, own))
        conversation = message.conversation_id
        calls.append(("get", f"/api/v1/conversations/{conversation}/messages/", None, own))
    calls.append(("get", "/api/v1/conversations/", None, ok))
    return calls


def test_no_api_response_shows_what_a_role_may_not_read_and_each_answers_as_it_should(world):
    """Every API call, for every signed-in role in turn (one world): the status the rules
    give, and nothing in the body the role may not read. A role's own asks add questions and
    answers as it goes; none of them may show another role anything either."""
    calls = _api_calls(world)
    for role in [r for r in ROLES if r not in OUT]:
        client = api_client(world["users"][role])
        for method, path, body, status in calls:
            response = getattr(client, method)(path, body, format="json")
            assert_no_leak(role, response, f"{method} {path} {body or ''}", status(role))


def test_without_a_valid_login_the_api_and_chat_show_nothing(client, world):
    for role in sorted(OUT):
        api = api_client()
        for method, path, body, _ in _api_calls(world):
            response = getattr(api, method)(path, body, format="json")
            assert_no_leak(role, response, path, 401)
        if role == "inactive":
            assert not client.login(username="inactive", password="correct horse battery")
        for message in Message.objects.filter(role="assistant"):
            response = client.get(reverse("chat:conversation", args=[message.conversation_id]))
            assert response.status_code == 302
