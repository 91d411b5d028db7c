"""The permission matrix of every API endpoint: the handbook's owner, a member of a group
that may read it, another user, a superuser, anonymous, a revoked token, an expired token,
and a read-only token asking to write. What one may not read is a 404 like what does not
exist; what one may read but not change is a 403."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from chat.services import answer_create
from sources.models import Source
from tests.api import api_client, upload
from tests.chat.asking import question_add

pytestmark = pytest.mark.django_db

USERS = ("owner", "member", "stranger", "superuser")
REFUSED = ("anonymous", "revoked", "expired")


@pytest.fixture
def world(people, handbook):
    """Ids the paths need: the handbook's leave policy, and a conversation of the owner's."""
    owner = people["owner"]
    question = question_add(conversation=None, user=owner, text="How much annual leave?")
    answer = answer_create(question=question, user=owner)
    source = Source.objects.create(
        name="handbook-site", kind="web", owner=owner, collection=people["handbook"],
        location="https://h.example/",
    )  # fmt: skip
    return {
        "source": source.pk,
        "collection": people["handbook"].pk,
        "document": handbook["leave.md"].pk,
        "conversation": question.conversation_id,
        "answer": answer.pk,
    }


# (method, path, body, whether it writes, expected status per user: owner, member, stranger,
# superuser)
ENDPOINTS = [
    ("get", "collections/", None, False, (200, 200, 200, 200)),
    ("get", "collections/{collection}/", None, False, (200, 200, 404, 200)),
    ("get", "documents/", None, False, (200, 200, 200, 200)),
    ("get", "documents/{document}/", None, False, (200, 200, 404, 200)),
    ("get", "documents/{document}/versions/", None, False, (200, 200, 404, 200)),
    ("get", "documents/{document}/chunks/", None, False, (200, 200, 404, 200)),
    ("post", "documents/", "upload", True, (201, 403, 404, 201)),
    ("patch", "documents/{document}/", {"title": "Leave"}, True, (200, 403, 404, 200)),
    ("post", "documents/{document}/reprocess/", None, True, (202, 403, 404, 202)),
    ("delete", "documents/{document}/", None, True, (204, 403, 404, 204)),
    ("post", "search/", {"query": "annual leave"}, False, (200, 200, 200, 200)),
    ("post", "ask/", {"question": "How much annual leave?"}, False, (201, 201, 201, 201)),
    ("get", "conversations/", None, False, (200, 200, 200, 200)),
    ("get", "conversations/{conversation}/", None, False, (200, 404, 404, 404)),
    ("get", "conversations/{conversation}/messages/", None, False, (200, 404, 404, 404)),
    ("get", "answers/{answer}/", None, False, (200, 404, 404, 404)),
    ("post", "answers/{answer}/feedback/", {"helpful": True}, False, (201, 404, 404, 404)),
    # Sources are their collection's managers' (the owner); a reader of the collection may
    # not add one (403), and to anyone else the collection is as missing (400: no such id).
    ("get", "sources/", None, False, (200, 200, 200, 200)),
    ("get", "sources/{source}/", None, False, (200, 404, 404, 200)),
    ("get", "sources/{source}/runs/", None, False, (200, 404, 404, 200)),
    ("post", "sources/", "source", True, (201, 403, 400, 201)),
    ("patch", "sources/{source}/", {"sync_minutes": 5}, True, (200, 404, 404, 200)),
    ("post", "sources/{source}/sync/", None, True, (202, 404, 404, 202)),
    ("delete", "sources/{source}/", None, True, (204, 404, 404, 204)),
]
IDS = [f"{method} {path}" for method, path, *_ in ENDPOINTS]


def _call(client, method, path, body, world, people):
    url = "/api/v1/" + path.format(**world)
    if body == "upload":
        return upload(client, people["handbook"], name="matrix.md")
    if body == "source":
        body = {"name": "matrix-site", "kind": "web", "location": "https://m.example/",
                "collection": world["collection"]}  # fmt: skip
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("method, path, body, writes, expected", ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("who", USERS)
def test_each_user_gets_what_their_rights_allow(
    people, world, who, method, path, body, writes, expected
):
    client = api_client(people[who], scope="write" if writes else "read")

    response = _call(client, method, path, body, world, people)

    assert response.status_code == expected[USERS.index(who)], response.content[:300]
    if response.status_code >= 400:
        assert response.json()["error"]["status"] == response.status_code


@pytest.mark.parametrize("method, path, body, writes, expected", ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("credential", REFUSED)
def test_no_valid_token_no_access(people, world, credential, method, path, body, writes, expected):
    token, plain = token_create(user=people["superuser"], scope="admin")
    if credential == "revoked":
        token_revoke(token=token)
    elif credential == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    client = api_client(token=None if credential == "anonymous" else plain)

    response = _call(client, method, path, body, world, people)

    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}


@pytest.mark.parametrize(
    "method, path, body, writes, expected",
    [e for e in ENDPOINTS if e[3]],
    ids=[i for i, e in zip(IDS, ENDPOINTS, strict=True) if e[3]],
)
def test_a_read_token_may_not_write_even_for_a_superuser(
    people, world, method, path, body, writes, expected
):
    client = api_client(people["superuser"], scope="read")

    response = _call(client, method, path, body, world, people)

    assert response.status_code == 403
    assert "write" in response.json()["error"]["message"]
