"""A membership a directory removes is gone from every surface on the next request: the
permission matrix's world (tests/prodrag/test_permission_matrix.py), where `reader_group`
reads the Yak rota through the group y-readers, now a directory group. The directory takes
reader_group out of it, by a SCIM call or at the next LDAP sync; then search in every mode,
asking, the stored answer, the chat pages, the API and every admin page show reader_group
nothing of the Yak rota (the matrix's body checks)."""

import pytest
from django.urls import reverse

from accounts.directory_sync import directory_sync
from accounts.models import DirectoryGroup, ExternalIdentity
from chat.models import Message
from retrieval.selectors import DENSE, FULLTEXT, HYBRID
from tests.accounts.slapd import Slapd, Tree, group_dn, person_dn
from tests.api import api_client
from tests.prodrag.test_permission_matrix import READS, SEES, _admin_pages, assert_no_leak, world

__all__ = ["world"]  # the matrix's fixture, used here

pytestmark = pytest.mark.django_db
QUESTION = "When does the rota start at dawn?"


def _entry_uuid(server: Slapd, dn: str) -> str:
    with server.connection() as connection:
        connection.search(dn, "(objectClass=*)", "BASE", attributes=["entryUUID"])
        return str(connection.entries[0].entryUUID)


@pytest.fixture(params=["scim", "ldap"])
def directory(request, world, settings, tmp_path):
    """y-readers and reader_group as the directory's; `remove()` takes reader_group out of
    y-readers the way that directory does."""
    reader, readers = world["users"]["reader_group"], world["groups"]["readers"]
    if request.param == "scim":
        settings.SCIM_TOKEN = "t" * 32
        ExternalIdentity.objects.create(user=reader, directory="scim", subject="r-1")
        DirectoryGroup.objects.create(group=readers, directory="scim", external_id="y-1")

        def remove():
            member = f'members[value eq "{reader.pk}"]'
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "remove", "path": member}]}  # fmt: skip
            response = api_client(token=None).patch(
                f"/scim/v2/Groups/{readers.pk}", body, format="json",
                HTTP_AUTHORIZATION=f"Bearer {settings.SCIM_TOKEN}",
            )  # fmt: skip
            assert response.status_code == 204

        yield remove
        return
    server = Slapd(tmp_path / "slapd")
    # groupOfNames keeps at least one member: a colleague stays in y-readers.
    people = {"reader_group": "pw", "colleague": "pw"}
    server.start(Tree(people=people, groups={"y-readers": (list(people), [])}))
    settings.LDAP = server.settings()
    ExternalIdentity.objects.create(
        user=reader, directory="ldap", subject=_entry_uuid(server, person_dn("reader_group"))
    )
    DirectoryGroup.objects.create(
        group=readers, directory="ldap", external_id=_entry_uuid(server, group_dn("y-readers"))
    )
    assert directory_sync().memberships_removed == 0  # the directory agrees, so far

    def remove():
        server.member_remove("y-readers", person_dn("reader_group"))
        assert directory_sync().memberships_removed == 1

    yield remove
    server.stop()


def test_a_membership_the_directory_removes_is_gone_from_every_surface(
    world, directory, client, monkeypatch
):
    reader = world["users"]["reader_group"]
    api = api_client(reader)
    asked = api.post("/api/v1/ask/", {"question": QUESTION}, format="json").json()
    assert "yak.md" in str(asked)  # it read the rota while in the group
    answer = Message.objects.get(pk=asked["answer"]["id"])
    before = api.post(reverse("v1:search"), {"query": "rota at dawn"}, format="json").json()
    assert {p["source"] for p in before["passages"]} == {"yak.md"}

    directory()

    monkeypatch.setitem(READS, "reader_group", set())
    monkeypatch.setitem(SEES, "reader_group", set())
    # hybrid+rerank re-orders hybrid's own candidates, and needs a re-ranker configured.
    for mode in (DENSE, FULLTEXT, HYBRID):
        searched = api.post(reverse("v1:search"), {"query": "rota at dawn", "mode": mode},
                            format="json")  # fmt: skip
        assert_no_leak("reader_group", searched, f"search {mode}", 200)
        assert searched.json()["passages"] == []
    asked_again = api.post("/api/v1/ask/", {"question": QUESTION}, format="json")
    assert_no_leak("reader_group", asked_again, "ask", 201)
    for url in (
        f"/api/v1/answers/{answer.pk}/",
        f"/api/v1/conversations/{answer.conversation_id}/messages/",
        f"/api/v1/conversations/{answer.conversation_id}/",
        "/api/v1/documents/",
        f"/api/v1/documents/{world['documents']['yak'].pk}/",
        "/api/v1/collections/",
    ):
        assert_no_leak("reader_group", api.get(url), f"API {url}")
    client.force_login(reader)
    for url in (
        reverse("chat:home"),
        reverse("chat:conversation", args=[answer.conversation_id]),
        reverse("chat:source", args=[answer.pk, 1]),
    ):
        assert_no_leak("reader_group", client.get(url), f"page {url}")
    for url, what, status in _admin_pages(world, reader):
        assert_no_leak("reader_group", client.get(url), f"GET {what}", status("reader_group"))
