"""A knowledge manager, in the admin: create a collection, add a document, grant a group."""

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from documents.models import Collection, Document
from tests.accounts.factories import GroupFactory, UserFactory
from tests.documents.factories import DocumentFactory, DocumentVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def knowledge_manager(client):
    manager = UserFactory(username="km", is_staff=True)
    manager.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="documents",
            codename__in=[
                "add_collection",
                "change_collection",
                "view_collection",
                "add_document",
                "change_document",
                "view_document",
            ],
        )
    )
    client.force_login(manager)
    return manager


def test_manager_creates_collection_adds_document_and_grants_a_group(client, knowledge_manager):
    staff_member = UserFactory(username="sam")
    hr = GroupFactory(name="hr")
    staff_member.groups.add(hr)

    response = client.post(
        reverse("admin:documents_collection_add"),
        {
            "name": "HR policies",
            "description": "",
            "owner": knowledge_manager.pk,
            "chunking": "structure",
            "chunk_tokens": 200,
            "chunk_overlap": 32,
        },
    )
    assert response.status_code == 302, response.content
    collection = Collection.objects.get(name="HR policies")

    response = client.post(
        reverse("admin:documents_document_add"),
        {
            "collection": collection.pk,
            "title": "Leave policy",
            "metadata": "{}",
            "upload": SimpleUploadedFile("leave.md", b"# Leave\n\nTwenty days a year."),
        },
    )
    assert response.status_code == 302, response.content
    document = Document.objects.get(title="Leave policy")
    assert document.current_version.file.read() == b"# Leave\n\nTwenty days a year."
    assert not Document.objects.visible_to(staff_member).filter(pk=document.pk).exists()

    permissions_url = reverse("admin:documents_document_permissions", args=[document.pk])
    response = client.post(permissions_url, {"group": "hr", "submit_manage_group": "1"})
    assert response.status_code == 302
    response = client.post(response.url, {"permissions": ["view_document"]})
    assert response.status_code == 302

    assert Document.objects.visible_to(staff_member).filter(pk=document.pk).exists()
    page = client.get(permissions_url)
    assert page.status_code == 200
    granted = {group.name: perms for group, perms in page.context["groups_perms"].items()}
    assert granted == {"hr": ["view_document"]}


def test_admin_lists_only_documents_the_manager_may_read(client, knowledge_manager):
    mine = DocumentFactory(owner=knowledge_manager, title="Mine")
    DocumentFactory(title="Someone else's")
    response = client.get(reverse("admin:documents_document_changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [mine]


def test_uploading_the_same_file_again_shows_the_existing_document(client, knowledge_manager):
    collection = Collection.objects.create(name="Handbook", owner=knowledge_manager)
    for title in ("First", "Second"):
        response = client.post(
            reverse("admin:documents_document_add"),
            {
                "collection": collection.pk,
                "title": title,
                "metadata": "{}",
                "upload": SimpleUploadedFile("handbook.txt", b"identical"),
            },
            follow=True,
        )
        assert response.status_code == 200
    assert list(Document.objects.values_list("title", flat=True)) == ["First"]
    assert "already in this collection" in response.content.decode()


def test_uploading_new_bytes_under_a_known_name_adds_a_version(client, knowledge_manager):
    collection = Collection.objects.create(name="Handbook", owner=knowledge_manager)
    for content in (b"first edition", b"second edition"):
        response = client.post(
            reverse("admin:documents_document_add"),
            {
                "collection": collection.pk,
                "metadata": "{}",
                "upload": SimpleUploadedFile("handbook.txt", content),
            },
            follow=True,
        )
        assert response.status_code == 200
    document = Document.objects.get()
    assert document.current_version.number == 2
    assert "is its version 2" in response.content.decode()


def test_document_pages_of_forbidden_documents_are_not_found(client, knowledge_manager):
    hidden = DocumentFactory(title="Hidden")
    response = client.get(reverse("admin:documents_document_change", args=[hidden.pk]))
    assert response.status_code == 302  # the admin redirects unknown objects to its index
    assert "Hidden" not in client.get(response.url, follow=True).content.decode()


def test_failed_documents_can_be_retried_from_the_list(
    client, knowledge_manager, django_capture_on_commit_callbacks, queued
):
    collection = Collection.objects.create(name="Handbook", owner=knowledge_manager)
    failed = DocumentFactory(
        collection=collection, owner=knowledge_manager, status="failed", error="broken", attempts=5
    )
    failed.current_version = DocumentVersionFactory(document=failed)
    failed.save()

    listing = client.get(reverse("admin:documents_document_changelist"))
    assert "failed: broken" in listing.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:documents_document_changelist"),
            {"action": "reprocess", "_selected_action": [failed.pk]},
            follow=True,
        )

    assert "1 document(s) queued for processing." in response.content.decode()
    assert queued == [[failed.pk]]
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.attempts) == ("pending", "", 0)


def test_the_document_list_names_types_as_people_do_and_offers_only_visible_ones(
    client, knowledge_manager
):
    """The list says "Word document", not the MIME type (which the document's page keeps);
    its type filter offers the types of the documents the viewer may list, nothing else."""
    own = Collection.objects.create(name="Handbook", owner=knowledge_manager)
    hidden = Collection.objects.create(name="Board", owner=UserFactory())
    word = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    policy = DocumentFactory(collection=own, owner=knowledge_manager, content_type=word)
    DocumentFactory(collection=own, owner=knowledge_manager, content_type="text/markdown")
    DocumentFactory(collection=hidden, owner=hidden.owner, content_type="application/pdf")

    listing = client.get(reverse("admin:documents_document_changelist")).content.decode()
    page = client.get(reverse("admin:documents_document_change", args=[policy.pk]))

    assert "Word document" in listing and "Markdown" in listing
    assert word not in listing
    assert "PDF" not in listing and "application/pdf" not in listing
    assert word in page.content.decode()
    filtered = client.get(
        reverse("admin:documents_document_changelist"), {"content_type": "text/markdown"}
    )
    assert filtered.context["cl"].result_count == 1
