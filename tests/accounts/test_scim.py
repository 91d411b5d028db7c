"""SCIM 2.0 over HTTP, in the sequences Microsoft Entra ID and Okta send: users and groups
created, found by filter, patched, deactivated and deleted; a membership removed takes the
group's documents away on the next request; bad bodies are refused in SCIM's error format and
create nothing."""

import json
import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.models import AuditEvent, DirectoryGroup, ExternalIdentity, User
from tests.accounts.factories import UserFactory
from tests.api import api_client
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

pytestmark = pytest.mark.django_db

TOKEN = "scim-test-token-0123456789"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SEARCH = {"query": "quarterly budget", "mode": "hybrid"}


@pytest.fixture
def scim(client, settings):
    settings.SCIM_TOKEN = TOKEN
    settings.DIRECTORY_GROUPS = re.compile(r"(?!Unmapped ).+")

    def call(method, path, body=None, token=TOKEN, raw=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        response = getattr(client, method)(
            f"/scim/v2/{path}", data=data, content_type="application/scim+json", **headers
        )
        assert response.status_code < 500, response.content
        return response

    return call


@pytest.fixture
def budget(db):
    boss = UserFactory(is_superuser=True)
    collection = CollectionFactory(owner=boss)
    ingest(collection, "plan.md", "# Finance plan\n\nThe quarterly budget is eleven million.")
    return collection


def found(user) -> list:
    return api_client(user).post(reverse("v1:search"), SEARCH, format="json").json()["passages"]


def entra_user(name: str) -> dict:
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": name,
        "userName": f"{name}@contoso.com",
        "active": True,
        "displayName": name.title(),
        "emails": [{"primary": True, "type": "work", "value": f"{name}@contoso.com"}],
        "name": {"formatted": name.title(), "familyName": "Person", "givenName": name.title()},
        ENTERPRISE: {"department": "Finance"},
    }


def test_entra_id_provisions_a_user_into_a_group_and_removing_the_membership_is_immediate(
    scim, budget
):
    """GIVEN Entra ID's provisioning sequence: look the user up, create them, look the group
    up, create it, add the member
    WHEN it removes the member
    THEN the group's documents are gone from the user's very next search."""
    lookup = scim("get", 'Users?filter=userName eq "anna@contoso.com"')
    assert lookup.json()["totalResults"] == 0
    created = scim("post", "Users", entra_user("anna"))
    assert created.status_code == 201, created.json()
    assert created["Content-Type"] == "application/scim+json"
    anna_id = created.json()["id"]
    assert created.json()["userName"] == "anna@contoso.com"
    assert created.json()["externalId"] == "anna"
    groups = scim("get", 'Groups?excludedAttributes=members&filter=displayName eq "Finance"')
    assert groups.json()["Resources"] == []
    group = scim("post", "Groups", {"schemas": [GROUP], "externalId": "9f3c", "displayName":
                                    "Finance", "members": []})  # fmt: skip
    assert group.status_code == 201
    group_id = group.json()["id"]
    assign_perm("view_document", Group.objects.get(pk=group_id), budget)
    anna = User.objects.get(pk=anna_id)
    assert found(anna) == []

    added = scim("patch", f"Groups/{group_id}", {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": anna_id}]}]})  # fmt: skip
    assert added.status_code == 204
    assert found(anna)
    removed = scim("patch", f"Groups/{group_id}", {"schemas": [PATCH], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": anna_id}]}]})  # fmt: skip
    assert removed.status_code == 204
    assert found(anna) == []

    lookup = scim("get", 'Users?filter=userName eq "ANNA@contoso.com"')  # case-insensitive
    assert [u["id"] for u in lookup.json()["Resources"]] == [anna_id]
    by_external = scim("get", 'Users?filter=externalId eq "anna"')
    assert by_external.json()["totalResults"] == 1
    events = AuditEvent.objects.filter(via="scim")
    assert {e.action for e in events} >= {"user.create", "group.create", "membership.add",
                                          "membership.remove"}  # fmt: skip
    membership = events.get(action="membership.remove")
    assert membership.details == {"group": "Finance", "directory": "scim"}


def test_deactivation_from_entra_id_ends_sessions_and_tokens_and_delete_unlinks(scim, client):
    anna_id = scim("post", "Users", entra_user("anna")).json()["id"]
    anna = User.objects.get(pk=anna_id)
    api = api_client(anna)
    assert api.get(reverse("v1:document-list")).status_code == 200
    client.force_login(anna)

    patched = scim("patch", f"Users/{anna_id}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})  # fmt: skip

    assert patched.status_code == 200 and patched.json()["active"] is False
    assert api.get(reverse("v1:document-list")).status_code == 401
    response = client.get(reverse("chat:home"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert scim("delete", f"Users/{anna_id}").status_code == 204
    assert scim("get", f"Users/{anna_id}").status_code == 404
    assert not User.objects.get(pk=anna_id).is_active  # kept, for the audit trail


def test_okta_patches_without_paths_renames_groups_and_removes_members_by_filter(scim):
    okta = {"schemas": [USER], "userName": "bert@okta.example", "name": {"givenName": "Bert",
            "familyName": "Okta"}, "emails": [{"primary": True, "value": "bert@okta.example",
            "type": "work"}], "displayName": "Bert Okta", "locale": "en-US", "externalId":
            "00u1", "groups": [], "password": "ignored-1A", "active": True}  # fmt: skip
    bert_id = scim("post", "Users", okta).json()["id"]
    group_id = scim("post", "Groups", {"schemas": [GROUP], "displayName": "Sales",
                                       "members": [{"value": bert_id}]}).json()["id"]  # fmt: skip
    assert Group.objects.get(pk=group_id).user_set.get().username == "bert@okta.example"

    renamed = scim("patch", f"Groups/{group_id}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"id": group_id, "displayName": "Sales EMEA"}}]})  # fmt: skip
    assert renamed.status_code == 204
    assert Group.objects.get(pk=group_id).name == "Sales EMEA"
    removed = scim("patch", f"Groups/{group_id}", {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{bert_id}"]'}]})  # fmt: skip
    assert removed.status_code == 204
    assert not Group.objects.get(pk=group_id).user_set.exists()
    deactivated = scim("patch", f"Users/{bert_id}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"active": False}}]})  # fmt: skip
    assert deactivated.json()["active"] is False
    replaced = scim("put", f"Users/{bert_id}", okta | {"name": {"givenName": "Bertram"}})
    assert replaced.json()["active"] is True and replaced.json()["name"]["givenName"] == "Bertram"
    listed = scim("get", "Groups?startIndex=1&count=10").json()
    assert listed["totalResults"] == 1 and listed["Resources"][0]["members"] == []
    assert scim("delete", f"Groups/{group_id}").status_code == 204
    assert not Group.objects.filter(pk=group_id).exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "scim_type", "says"),
    [
        (
            "post",
            "Users",
            {"schemas": [USER], "userName": "x", "shoeSize": 44},
            400,
            "invalidSyntax",
            "shoesize",
        ),
        ("post", "Users", {"schemas": [USER], "userName": 5}, 400, "invalidValue", "userName"),
        (
            "post",
            "Users",
            {"schemas": [USER], "userName": "x", "active": "yes"},
            400,
            "invalidValue",
            "active",
        ),
        (
            "post",
            "Users",
            {"schemas": [USER], "userName": "x", "emails": "x@y"},
            400,
            "invalidValue",
            "emails",
        ),
        (
            "post",
            "Users",
            {"schemas": [USER], "userName": "x", "name": {"nick": "x"}},
            400,
            "invalidSyntax",
            "nick",
        ),
        ("post", "Users", {"schemas": [GROUP], "userName": "x"}, 400, "invalidSyntax", USER),
        ("post", "Users", ["not", "an", "object"], 400, "invalidSyntax", "object"),
        (
            "post",
            "Groups",
            {"schemas": [GROUP], "displayName": "G", "members": [{"value": "999999"}]},
            400,
            "invalidValue",
            "999999",
        ),
        (
            "post",
            "Groups",
            {"schemas": [GROUP], "displayName": "Unmapped team"},
            400,
            "invalidValue",
            "PRODRAG_DIRECTORY_GROUPS",
        ),
        (
            "post",
            "Groups",
            {"schemas": [GROUP], "displayName": "G", "owner": "me"},
            400,
            "invalidSyntax",
            "owner",
        ),
        ("get", 'Users?filter=userName co "a"', None, 400, "invalidFilter", "eq"),
        ("get", "Users/12345", None, 404, "", "No user"),
        ("put", "ServiceProviderConfig", {}, 405, "", "PUT"),
    ],
)
def test_bad_requests_are_refused_in_scims_error_format_and_create_nothing(
    scim, method, path, body, status, scim_type, says
):
    response = scim(method, path, body)

    assert response.status_code == status
    error = response.json()
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == str(status) and error.get("scimType", "") == scim_type
    assert says.lower() in error["detail"].lower()
    assert not User.objects.exists() and not Group.objects.exists()


def test_a_patch_with_a_wrong_type_changes_nothing(scim):
    anna_id = scim("post", "Users", entra_user("anna")).json()["id"]
    for operations in (
        [{"op": "Replace", "path": "active", "value": "maybe"}],
        [{"op": "Replace", "path": "shoeSize", "value": 44}],
        [{"op": "Jump", "path": "active", "value": True}],
        [{"op": "Replace", "path": "userName", "value": ""}],
    ):
        response = scim("patch", f"Users/{anna_id}", {"schemas": [PATCH], "Operations": operations})
        assert response.status_code == 400, operations
    anna = User.objects.get(pk=anna_id)
    assert (anna.username, anna.is_active) == ("anna@contoso.com", True)
    not_json = scim("post", "Users", raw="{nope")
    assert not_json.status_code == 400 and not_json.json()["scimType"] == "invalidSyntax"


def test_without_the_token_scim_answers_401_and_without_configuration_404(scim, settings):
    for token in ("", "wrong-token"):
        response = scim("get", "Users", token=token)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["status"] == "401"
    settings.SCIM_TOKEN = None
    assert scim("get", "Users").status_code == 404


def test_scim_never_takes_over_a_local_account_or_a_second_user_of_one_name(scim):
    UserFactory(username="admin@contoso.com", is_superuser=True)
    taken = scim("post", "Users", {"schemas": [USER], "userName": "admin@contoso.com"})
    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness"
    assert "local account" in taken.json()["detail"]
    assert not ExternalIdentity.objects.exists()
    assert scim("post", "Users", entra_user("anna")).status_code == 201
    again = scim("post", "Users", entra_user("anna"))
    assert again.status_code == 409
    assert scim("post", "Groups", {"schemas": [GROUP], "displayName": "Ops"}).status_code == 201
    assert scim("post", "Groups", {"schemas": [GROUP], "displayName": "Ops"}).status_code == 409
    assert DirectoryGroup.objects.count() == 1


def test_filters_and_conflicts_look_at_scims_own_ids_only(scim):
    """An OpenID `sub` equal to a SCIM filter's externalId is another directory's id."""
    anna_id = scim("post", "Users", entra_user("anna")).json()["id"]
    ExternalIdentity.objects.create(user_id=anna_id, directory="oidc", subject="sub-42")
    assert scim("get", 'Users?filter=externalId eq "sub-42"').json()["totalResults"] == 0
    assert scim("get", 'Users?filter=externalId eq "anna"').json()["totalResults"] == 1
    group = {"schemas": [GROUP], "displayName": "Ops", "externalId": "g-1"}
    assert scim("post", "Groups", group).status_code == 201
    again = scim("post", "Groups", group | {"displayName": "Ops two"})
    assert again.status_code == 409 and "g-1" in again.json()["detail"]
    assert Group.objects.get().name == "Ops"


def test_a_rename_keeps_the_user_and_another_users_external_id_is_a_conflict(scim):
    plain = {"schemas": [USER], "userName": "old@okta.example"}  # no externalId
    user_id = scim("post", "Users", plain).json()["id"]
    renamed = scim("patch", f"Users/{user_id}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "userName", "value": "new@okta.example"}]})  # fmt: skip
    assert renamed.status_code == 200 and renamed.json()["id"] == user_id
    assert list(User.objects.values_list("username", flat=True)) == ["new@okta.example"]
    scim("post", "Users", entra_user("anna"))
    taken = scim("put", f"Users/{user_id}", plain | {"externalId": "anna"})
    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness"
    assert User.objects.get(pk=user_id).username == "new@okta.example"
