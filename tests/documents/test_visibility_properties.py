"""visible_to agrees with an independent reading of the rules, for random worlds."""

from guardian.shortcuts import assign_perm, remove_perm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import User
from documents.models import Document
from tests.accounts.factories import GroupFactory, UserFactory
from tests.documents.factories import CollectionFactory, DocumentFactory

USERS, GROUPS, COLLECTIONS, DOCUMENTS = 4, 3, 2, 6

worlds = st.fixed_dictionaries(
    {
        "superuser": st.sampled_from(range(USERS)),
        "inactive": st.sets(st.sampled_from(range(USERS)), max_size=1),
        "members": st.sets(st.tuples(st.integers(0, USERS - 1), st.integers(0, GROUPS - 1))),
        "collections": st.lists(
            st.tuples(st.integers(0, USERS - 1), st.booleans()),
            min_size=COLLECTIONS,
            max_size=COLLECTIONS,
        ),
        "documents": st.lists(
            st.tuples(st.integers(0, USERS - 1), st.integers(0, COLLECTIONS - 1), st.booleans()),
            min_size=DOCUMENTS,
            max_size=DOCUMENTS,
        ),
        # (target kind, target index, grantee kind, grantee index)
        "grants": st.sets(
            st.tuples(
                st.one_of(
                    st.tuples(st.just("collection"), st.integers(0, COLLECTIONS - 1)),
                    st.tuples(st.just("document"), st.integers(0, DOCUMENTS - 1)),
                ),
                st.one_of(
                    st.tuples(st.just("user"), st.integers(0, USERS - 1)),
                    st.tuples(st.just("group"), st.integers(0, GROUPS - 1)),
                ),
            ).map(lambda pair: (*pair[0], *pair[1])),
            max_size=8,
        ),
        "revoke": st.integers(0, 7),
        "leave": st.integers(0, 11),
    }
)


def expected_visible(world, user_index):
    """The rules of README "Who may read a document", computed without the ACL arrays."""
    if user_index in world["inactive"]:
        return set()
    if user_index == world["superuser"]:
        return set(range(DOCUMENTS))
    groups = {g for u, g in world["members"] if u == user_index}

    def granted(kind, index):
        return any(
            (k, i) == (kind, index)
            and ((who == "user" and whom == user_index) or (who == "group" and whom in groups))
            for k, i, who, whom in world["grants"]
        )

    visible = set()
    for index, (owner, collection, open_doc) in enumerate(world["documents"]):
        collection_owner, open_collection = world["collections"][collection]
        if (
            user_index in (owner, collection_owner)
            or open_doc
            or open_collection
            or granted("document", index)
            or granted("collection", collection)
        ):
            visible.add(index)
    return visible


class VisibleToProperties(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=worlds)
    def test_visible_to_matches_the_rules_before_and_after_changes(self, world):
        users = [
            UserFactory(
                is_superuser=(i == world["superuser"]), is_active=i not in world["inactive"]
            )
            for i in range(USERS)
        ]
        groups = [GroupFactory() for _ in range(GROUPS)]
        for user, group in world["members"]:
            users[user].groups.add(groups[group])
        collections = [
            CollectionFactory(owner=users[owner], open_to_staff=open_)
            for owner, open_ in world["collections"]
        ]
        documents = [
            DocumentFactory(owner=users[owner], collection=collections[c], open_to_staff=open_)
            for owner, c, open_ in world["documents"]
        ]

        def target(kind, index):
            return collections[index] if kind == "collection" else documents[index]

        def grantee(who, whom):
            return users[whom] if who == "user" else groups[whom]

        for kind, index, who, whom in world["grants"]:
            assign_perm("view_document", grantee(who, whom), target(kind, index))
        self.assert_matches(world, users, documents)

        if world["grants"]:  # revoke one grant
            revoked = sorted(world["grants"])[world["revoke"] % len(world["grants"])]
            kind, index, who, whom = revoked
            remove_perm("view_document", grantee(who, whom), target(kind, index))
            world["grants"].discard(revoked)
        if world["members"]:  # one membership ends
            left = sorted(world["members"])[world["leave"] % len(world["members"])]
            users[left[0]].groups.remove(groups[left[1]])
            world["members"].discard(left)
        self.assert_matches(world, users, documents)

    def assert_matches(self, world, users, documents):
        index_of = {doc.pk: i for i, doc in enumerate(documents)}
        for i, user in enumerate(users):
            user = User.objects.get(pk=user.pk)
            got = {
                index_of[pk]
                for pk in Document.objects.visible_to(user).values_list("pk", flat=True)
            }
            assert got == expected_visible(world, i), f"user {i}"
