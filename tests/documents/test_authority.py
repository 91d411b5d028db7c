"""The holes a review found around the search query (issue 16), each as the attack that worked:
collection takeover through the admin, uploads that overwrote or revealed a private document,
the admin's metadata (filters, owner lists, delete pages, warnings), admin actions run by
view-only staff, and a rename in the admin that search did not see."""

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.urls import reverse
from guardian.shortcuts import assign_perm

from documents.authority import may_change_document, may_manage_collection
from documents.models import Collection, Document, DocumentVersion
from documents.services.uploads import document_create
from retrieval.selectors import passages_search
from tests.accounts.factories import GroupFactory, UserFactory
from tests.api import api_client, upload
from tests.documents.factories import CollectionFactory, DocumentFactory, DocumentVersionFactory
from tests.handbook import ingest

pytestmark = pytest.mark.django_db

KNOWLEDGE_MANAGER_PERMISSIONS = [
    "add_collection",
    "change_collection",
    "delete_collection",
    "view_collection",
    "add_document",
    "change_document",
    "delete_document",
    "view_document",
]


@pytest.fixture
def knowledge_manager(client):
    """Staff with every model permission on collections and documents, and no object."""
    user = UserFactory(username="km", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="documents", codename__in=KNOWLEDGE_MANAGER_PERMISSIONS
        )
    )
    client.force_login(user)
    return user


@pytest.fixture
def shared(db):
    """Another team's collection with one document open to staff and one private."""
    owner = UserFactory(username="other-team")
    collection = CollectionFactory(name="Other team", owner=owner)
    open_ = DocumentFactory(collection=collection, owner=owner, open_to_staff=True, title="Menu")
    secret = DocumentFactory(collection=collection, owner=owner, title="Layoff plan")
    return {"collection": collection, "open": open_, "secret": secret, "owner": owner}


def test_model_permissions_do_not_let_staff_take_over_a_collection(
    client, knowledge_manager, shared
):
    """GIVEN staff with change_collection who can read one document of another team's
    collection WHEN they open its permission pages, grant themselves, or change its owner
    THEN every attempt is refused and nothing changes: its private document stays unread."""
    collection = shared["collection"]
    pages = [
        reverse("admin:documents_collection_permissions", args=[collection.pk]),
        reverse(
            "admin:documents_collection_permissions_manage_user",
            args=[collection.pk, knowledge_manager.pk],
        ),
    ]
    for page in pages:
        assert client.get(page).status_code == 403
    response = client.post(pages[1], {"permissions": ["view_document", "manage_collection"]})
    assert response.status_code == 403
    response = client.post(
        reverse("admin:documents_collection_change", args=[collection.pk]),
        {"name": "Mine now", "owner": knowledge_manager.pk, "open_to_staff": "on",
         "chunking": "structure", "chunk_tokens": 200, "chunk_overlap": 32},
    )  # fmt: skip
    assert response.status_code == 403
    collection.refresh_from_db()
    assert (collection.name, collection.owner, collection.open_to_staff) == (
        "Other team",
        shared["owner"],
        False,
    )
    assert not Document.objects.visible_to(knowledge_manager).filter(pk=shared["secret"].pk)
    assert (
        client.get(reverse("admin:documents_collection_change", args=[collection.pk])).context[
            "has_change_permission"
        ]
        is False
    )


def test_a_collection_is_managed_by_its_owner_and_by_user_and_group_grants(shared):
    collection = shared["collection"]
    by_user, by_group, reader = UserFactory(), UserFactory(), UserFactory()
    team = GroupFactory()
    by_group.groups.add(team)
    assign_perm("manage_collection", by_user, collection)
    assign_perm("manage_collection", team, collection)
    assign_perm("view_document", reader, collection)
    collection.refresh_from_db()

    for user in (shared["owner"], by_user, by_group):
        assert may_manage_collection(user, collection)
        assert may_change_document(user, shared["secret"])
        # A manager reads every document of the collection.
        assert set(Document.objects.visible_to(user)) == {shared["open"], shared["secret"]}
        assert Collection.objects.managed_by(user).get() == collection
    assert not may_manage_collection(reader, collection)
    assert not may_change_document(reader, shared["secret"])
    assert not Collection.objects.managed_by(reader).exists()

    by_group.groups.remove(team)
    assert not may_manage_collection(by_group, collection)
    assert not Document.objects.visible_to(by_group).filter(pk=shared["secret"].pk).exists()


def test_uploads_into_a_collection_the_user_does_not_manage_are_refused_and_store_nothing(
    shared, knowledge_manager
):
    """GIVEN a user with add_document who reads the open document of a collection
    WHEN they upload a file named like its private document, or with its exact bytes
    THEN each upload is a 403 that names no document, and nothing is stored."""
    client = api_client(knowledge_manager, scope="write")
    secret = shared["secret"]
    secret_version = DocumentVersionFactory(document=secret, number=1)
    secret.current_version = secret_version
    secret.save()
    before = (Document.objects.count(), DocumentVersion.objects.count())

    for name, text in ((secret.source, "overwritten"), ("copy.txt", "text")):
        response = upload(client, shared["collection"], name=name, text=text)
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"
        assert b"Layoff" not in response.content and str(secret.pk).encode() not in response.content

    assert (Document.objects.count(), DocumentVersion.objects.count()) == before
    secret.refresh_from_db()
    assert secret.current_version == secret_version


def test_a_clashing_external_id_is_a_409_and_stores_nothing(shared):
    client = api_client(shared["owner"], scope="write")
    first = upload(client, shared["collection"], name="a.md", text="A", external_id="HR-1")
    assert first.status_code == 201
    before = Document.objects.count()

    response = upload(client, shared["collection"], name="b.md", text="B", external_id="HR-1")

    assert response.status_code == 409
    assert response.json()["error"] == {
        "status": 409,
        "code": "conflict",
        "message": "Another document in this collection has the external id 'HR-1'.",
    }
    assert Document.objects.count() == before


def test_the_admin_offers_only_managed_collections_and_no_other_users_for_uploads(
    client, knowledge_manager, shared
):
    mine = CollectionFactory(name="Mine", owner=knowledge_manager)
    page = client.get(reverse("admin:documents_document_add"))
    assert page.status_code == 200
    choices = list(page.context["adminform"].form.fields["collection"].queryset)
    assert choices == [mine]

    response = client.post(
        reverse("admin:documents_document_add"),
        {
            "collection": shared["collection"].pk,
            "metadata": "{}",
            "upload": ContentFile(b"overwrite", name=shared["secret"].source),
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert "Select a valid choice" in response.content.decode()
    assert shared["secret"].versions.count() == 0

    page = client.get(reverse("admin:documents_collection_add"))
    owners = list(page.context["adminform"].form.fields["owner"].queryset)
    assert owners == [knowledge_manager]


def test_the_admin_shows_no_metadata_of_unreadable_documents_or_collections(
    client, knowledge_manager, shared
):
    """The collection filter names only the listed documents' collections; the owner
    dropdown of a document lists its owner and the viewer only."""
    hidden = CollectionFactory(name="Board only")
    DocumentFactory(collection=hidden, title="Acquisition")
    listing = client.get(reverse("admin:documents_document_changelist"))
    body = listing.content.decode()
    assert "Other team" in body  # the menu is readable, so its collection's name
    assert "Board only" not in body and "Acquisition" not in body and "Layoff" not in body

    assign_perm("manage_collection", knowledge_manager, shared["collection"])
    page = client.get(reverse("admin:documents_document_change", args=[shared["secret"].pk]))
    owners = set(page.context["adminform"].form.fields["owner"].queryset)
    assert owners == {knowledge_manager, shared["owner"]}


def test_the_collection_delete_page_is_only_for_its_managers(client, knowledge_manager, shared):
    page = client.get(reverse("admin:documents_collection_delete", args=[shared["collection"].pk]))
    assert page.status_code == 403
    assert "Layoff" not in page.content.decode()


def test_bulk_delete_refuses_documents_the_user_may_read_but_not_change(
    client, knowledge_manager, shared
):
    response = client.post(
        reverse("admin:documents_document_changelist"),
        {"action": "delete_selected", "_selected_action": [shared["open"].pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert Document.objects.filter(pk=shared["open"].pk).exists()


def test_view_only_staff_can_neither_revoke_tokens_nor_reprocess_documents(client, shared):
    from accounts.services import token_create

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_apitoken", "view_document"])
    )
    client.force_login(viewer)
    token, _ = token_create(user=shared["owner"], scope="read")
    failed = shared["open"]
    failed.status = "failed"
    failed.current_version = DocumentVersionFactory(document=failed, number=1)
    failed.save()

    client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    client.post(
        reverse("admin:documents_document_changelist"),
        {"action": "reprocess", "_selected_action": [failed.pk]},
    )

    token.refresh_from_db()
    failed.refresh_from_db()
    assert token.revoked_at is None
    assert failed.status == "failed"


def test_renaming_a_document_in_the_admin_refreshes_what_full_text_search_finds(client):
    owner = UserFactory(is_staff=True)
    client.force_login(owner)
    document = ingest(CollectionFactory(owner=owner), "memo.md", "# Memo\n\nLunch at noon.")
    assert not passages_search(user=owner, query="quarterly", mode="fulltext").passages

    response = client.post(
        reverse("admin:documents_document_change", args=[document.pk]),
        {"collection": document.collection_id, "title": "Quarterly memo", "owner": owner.pk,
         "metadata": "{}"},
    )  # fmt: skip

    assert response.status_code == 302, response.content[:2000]
    found = passages_search(user=owner, query="quarterly", mode="fulltext").passages
    assert [p.document_id for p in found] == [document.pk]


def test_uploading_as_a_manager_still_versions_and_deduplicates(shared):
    """The duplicate and new-version rules keep working for those who may meet them: a
    manager sees every document of the collection."""
    collection, owner = shared["collection"], shared["owner"]
    first, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(b"one", name="policy.txt")
    )
    assert outcome == "created"
    same, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(b"one", name="policy.txt")
    )
    assert (same.pk, outcome) == (first.pk, "unchanged")
    newer, outcome = document_create(
        collection=collection, owner=owner, upload=ContentFile(b"two", name="policy.txt")
    )
    assert (newer.pk, outcome) == (first.pk, "new_version")


def test_the_object_permissions_link_shows_only_to_those_who_may_grant(
    client, knowledge_manager, shared
):
    url = reverse("admin:documents_collection_change", args=[shared["collection"].pk])
    permissions = reverse("admin:documents_collection_permissions", args=[shared["collection"].pk])
    assert permissions not in client.get(url).content.decode()

    assign_perm("manage_collection", knowledge_manager, shared["collection"])
    assert permissions in client.get(url).content.decode()
