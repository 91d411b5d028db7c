"""/api/v1/collections/: the permission matrix, and the shared error shape."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from tests.api import api_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/collections/"


@pytest.mark.parametrize(
    "who, names",
    [
        ("owner", ["Handbook"]),
        ("member", ["Handbook"]),
        ("stranger", []),
        ("superuser", ["Board", "Handbook"]),
    ],
)
def test_each_user_lists_exactly_the_collections_they_may_read(people, who, names):
    response = api_client(people[who]).get(URL)

    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == names


def test_a_collection_one_may_not_read_answers_404_like_one_that_does_not_exist(people):
    client = api_client(people["member"])

    forbidden = client.get(f"{URL}{people['board'].pk}/")
    missing = client.get(f"{URL}999999/")

    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.json() == missing.json()
    assert client.get(f"{URL}{people['handbook'].pk}/").json()["name"] == "Handbook"


def test_without_credentials_the_answer_is_401_naming_the_bearer_scheme(people):
    response = api_client().get(URL)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("spoil", ["revoked", "expired"])
def test_a_revoked_or_expired_token_is_refused_with_its_reason(people, spoil):
    token, plain = token_create(user=people["superuser"])
    if spoil == "revoked":
        token_revoke(token=token)
    else:
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))

    response = api_client(token=plain).get(URL)

    assert response.status_code == 401
    assert spoil in response.json()["error"]["message"]


def test_a_read_token_cannot_write_and_says_which_scope_it_lacks(people):
    read = api_client(people["superuser"], scope="read").post(URL, {"name": "New"})
    admin = api_client(people["superuser"], scope="admin").post(URL, {"name": "New"})

    assert read.status_code == 403
    assert read.json()["error"] == {
        "status": 403,
        "code": "permission_denied",
        "message": "This token's scope (read) does not allow this; it needs write.",
    }
    assert admin.status_code == 405  # allowed by scope; collections are not created here


def test_a_signed_in_browser_session_works_without_a_token(people, client):
    client.force_login(people["member"])

    response = client.get(URL)

    assert [c["name"] for c in response.json()["results"]] == ["Handbook"]
