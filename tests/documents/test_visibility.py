"""Who may read which document: Document.objects.visible_to and access_document."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from guardian.shortcuts import assign_perm, remove_perm

from documents.models import Collection, Document
from documents.selectors import access_document
from tests.accounts.factories import GroupFactory, UserFactory
from tests.documents.factories import CollectionFactory, DocumentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Alice (in group 'hr') and a private corpus owned by Bob, with one way in per document."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    hr, finance = GroupFactory(name="hr"), GroupFactory(name="finance")
    alice.groups.add(hr)
    private = CollectionFactory(name="private", owner=bob)
    hr_policies = CollectionFactory(name="hr-policies", owner=bob)
    handbook = CollectionFactory(name="handbook", owner=bob, open_to_staff=True)
    assign_perm("view_document", hr, hr_policies)
    docs = {
        "alice_owns": DocumentFactory(collection=private, owner=alice),
        "granted_to_alice": DocumentFactory(collection=private, owner=bob),
        "granted_to_hr": DocumentFactory(collection=private, owner=bob),
        "granted_to_finance": DocumentFactory(collection=private, owner=bob),
        "in_hr_collection": DocumentFactory(collection=hr_policies, owner=bob),
        "open_document": DocumentFactory(collection=private, owner=bob, open_to_staff=True),
        "in_open_collection": DocumentFactory(collection=handbook, owner=bob),
        "bobs_secret": DocumentFactory(collection=private, owner=bob),
    }
    assign_perm("view_document", alice, docs["granted_to_alice"])
    assign_perm("view_document", hr, docs["granted_to_hr"])
    assign_perm("view_document", finance, docs["granted_to_finance"])
    return {"alice": alice, "bob": bob, "hr": hr, "docs": docs, "private": private}


def visible_keys(user, docs):
    visible = set(Document.objects.visible_to(user).values_list("pk", flat=True))
    return {key for key, doc in docs.items() if doc.pk in visible}


def test_user_sees_exactly_the_documents_granted_by_each_route(world):
    assert visible_keys(world["alice"], world["docs"]) == {
        "alice_owns",
        "granted_to_alice",
        "granted_to_hr",
        "in_hr_collection",
        "open_document",
        "in_open_collection",
    }


def test_owner_of_the_collection_reads_all_its_documents(world):
    assert visible_keys(world["bob"], world["docs"]) == set(world["docs"])


def test_revoking_a_direct_grant_takes_effect_on_the_next_query(world):
    remove_perm("view_document", world["alice"], world["docs"]["granted_to_alice"])
    assert "granted_to_alice" not in visible_keys(world["alice"], world["docs"])


def test_revoking_a_collection_grant_hides_its_documents(world):
    hr_policies = Collection.objects.get(name="hr-policies")
    remove_perm("view_document", world["hr"], hr_policies)
    assert "in_hr_collection" not in visible_keys(world["alice"], world["docs"])


def test_leaving_a_group_loses_its_grants_at_once(world):
    world["alice"].groups.remove(world["hr"])
    assert visible_keys(world["alice"], world["docs"]) == {
        "alice_owns",
        "granted_to_alice",
        "open_document",
        "in_open_collection",
    }


def test_joining_a_group_gains_its_grants_at_once(world):
    finance = world["docs"]["granted_to_finance"].documentgroupobjectpermission_set.get().group
    world["alice"].groups.add(finance)
    assert "granted_to_finance" in visible_keys(world["alice"], world["docs"])


def test_moving_a_document_out_of_a_granted_collection_hides_it(world):
    doc = world["docs"]["in_hr_collection"]
    doc.collection = world["private"]
    doc.save()
    assert "in_hr_collection" not in visible_keys(world["alice"], world["docs"])


def test_closing_an_open_document_hides_it(world):
    doc = world["docs"]["open_document"]
    doc.open_to_staff = False
    doc.save(update_fields=["open_to_staff"])
    assert "open_document" not in visible_keys(world["alice"], world["docs"])


def test_transferring_ownership_moves_the_owner_right(world):
    doc = world["docs"]["alice_owns"]
    doc.owner = world["bob"]
    doc.save(update_fields=["owner"])
    assert "alice_owns" not in visible_keys(world["alice"], world["docs"])


def test_deleting_a_group_removes_what_it_granted(world):
    world["hr"].delete()
    keys = visible_keys(world["alice"], world["docs"])
    assert "granted_to_hr" not in keys
    assert "in_hr_collection" not in keys


def test_inactive_user_sees_nothing_even_what_they_own(world):
    alice = world["alice"]
    alice.is_active = False
    alice.save()
    assert visible_keys(alice, world["docs"]) == set()


def test_anonymous_sees_nothing_even_open_documents(world):
    assert visible_keys(AnonymousUser(), world["docs"]) == set()


def test_superuser_sees_everything(world):
    root = UserFactory(is_superuser=True, is_staff=True)
    assert visible_keys(root, world["docs"]) == set(world["docs"])


def test_unrelated_user_sees_only_open_documents(world):
    carol = UserFactory()
    assert visible_keys(carol, world["docs"]) == {"open_document", "in_open_collection"}


def test_visible_to_costs_two_queries(world, django_assert_num_queries):
    with django_assert_num_queries(2):  # the user's groups, then the documents
        list(Document.objects.visible_to(world["alice"]))


def test_collections_visible_through_their_own_or_a_document_grant(world):
    names = set(Collection.objects.visible_to(world["alice"]).values_list("name", flat=True))
    # "private" only through documents in it that alice may read.
    assert names == {"private", "hr-policies", "handbook"}
    carol = UserFactory()
    assert set(Collection.objects.visible_to(carol).values_list("name", flat=True)) == {
        "private",  # holds an open document
        "handbook",
    }


def test_access_document_hides_forbidden_and_missing_alike(world):
    alice = world["alice"]
    assert access_document(alice, world["docs"]["granted_to_hr"].pk).pk == (
        world["docs"]["granted_to_hr"].pk
    )
    with pytest.raises(Http404) as forbidden:
        access_document(alice, world["docs"]["bobs_secret"].pk)
    with pytest.raises(Http404) as missing:
        access_document(alice, 10**9)
    assert str(forbidden.value) == str(missing.value)
