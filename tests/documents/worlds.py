"""Random permission worlds for property tests: users, groups, memberships, collections,
documents, read and manage grants; the rules (docs/permissions.md) read independently of the
ACL arrays; and their changes."""

from dataclasses import dataclass

from guardian.shortcuts import assign_perm, remove_perm
from hypothesis import strategies as st

from accounts.models import User
from documents.models import Collection, Document
from tests.accounts.factories import GroupFactory, UserFactory
from tests.documents.factories import CollectionFactory, DocumentFactory

USERS, GROUPS, COLLECTIONS, DOCUMENTS = 4, 3, 2, 6

# Open to staff one time in five: a world where most documents are open to everyone has
# little to leak.
rarely_open = st.integers(0, 4).map(lambda n: n == 0)

worlds = st.fixed_dictionaries(
    {
        "superuser": st.sampled_from(range(USERS)),
        "inactive": st.sets(st.sampled_from(range(USERS)), max_size=1),
        "members": st.sets(st.tuples(st.integers(0, USERS - 1), st.integers(0, GROUPS - 1))),
        "collections": st.lists(
            st.tuples(st.integers(0, USERS - 1), rarely_open),
            min_size=COLLECTIONS,
            max_size=COLLECTIONS,
        ),
        "documents": st.lists(
            st.tuples(st.integers(0, USERS - 1), st.integers(0, COLLECTIONS - 1), rarely_open),
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
        # manage_collection grants: (collection index, grantee kind, grantee index)
        "manages": st.sets(
            st.tuples(
                st.integers(0, COLLECTIONS - 1),
                st.sampled_from(["user", "group"]),
                st.integers(0, max(USERS, GROUPS) - 1),
            ).filter(lambda grant: grant[2] < (USERS if grant[1] == "user" else GROUPS)),
            max_size=3,
        ),
        "revoke": st.integers(0, 7),
        "leave": st.integers(0, 11),
    }
)


def _groups(world, user_index) -> set[int]:
    return {g for u, g in world["members"] if u == user_index}


def expected_manages(world, user_index, collection) -> bool:
    """docs/permissions.md: the collection's owner, a manage grant to them or their group."""
    if user_index in world["inactive"]:
        return False
    if user_index == world["superuser"]:
        return True
    groups = _groups(world, user_index)
    return world["collections"][collection][0] == user_index or any(
        c == collection
        and ((who == "user" and whom == user_index) or (who == "group" and whom in groups))
        for c, who, whom in world["manages"]
    )


def expected_visible(world, user_index):
    """The rules of README "Who may read a document", computed without the ACL arrays."""
    if user_index in world["inactive"]:
        return set()
    if user_index == world["superuser"]:
        return set(range(DOCUMENTS))
    groups = _groups(world, user_index)

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
            or expected_manages(world, user_index, collection)
            or open_doc
            or open_collection
            or granted("document", index)
            or granted("collection", collection)
        ):
            visible.add(index)
    return visible


@dataclass
class World:
    spec: dict
    users: list[User]
    groups: list
    collections: list[Collection]
    documents: list[Document]

    def target(self, kind, index):
        return self.collections[index] if kind == "collection" else self.documents[index]

    def grantee(self, who, whom):
        return self.users[whom] if who == "user" else self.groups[whom]

    def change(self):
        """Revoke one grant and end one membership (when there are any)."""
        world = self.spec
        if world["grants"]:
            self._revoke(sorted(world["grants"])[world["revoke"] % len(world["grants"])])
        if world["members"]:
            self._leave(sorted(world["members"])[world["leave"] % len(world["members"])])

    def narrow(self, me: int, *, deactivate: bool) -> None:
        """A narrowing change that user `me` feels, where the world has one: a read grant they
        read through revoked (to them or to one of their groups), one of their memberships
        ended, a manage grant they hold revoked; or, with `deactivate`, they are deactivated."""
        world = self.spec
        groups = _groups(world, me)

        def mine(who, whom):
            return (who == "user" and whom == me) or (who == "group" and whom in groups)

        relied_on = sorted(g for g in world["grants"] if mine(g[2], g[3]))
        if relied_on:
            self._revoke(relied_on[world["revoke"] % len(relied_on)])
        memberships = sorted(m for m in world["members"] if m[0] == me)
        if memberships:
            self._leave(memberships[world["leave"] % len(memberships)])
        managing = sorted(m for m in world["manages"] if mine(m[1], m[2]))
        if managing:
            collection, who, whom = managing[0]
            remove_perm("manage_collection", self.grantee(who, whom), self.collections[collection])
            world["manages"].discard(managing[0])
        if deactivate:
            user = self.users[me]
            user.is_active = False
            user.save()
            world["inactive"] = {*world["inactive"], me}

    def _revoke(self, grant) -> None:
        kind, index, who, whom = grant
        remove_perm("view_document", self.grantee(who, whom), self.target(kind, index))
        self.spec["grants"].discard(grant)

    def _leave(self, membership) -> None:
        self.users[membership[0]].groups.remove(self.groups[membership[1]])
        self.spec["members"].discard(membership)


def world_build(world) -> World:
    users = [
        UserFactory(is_superuser=(i == world["superuser"]), is_active=i not in world["inactive"])
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
    built = World(world, users, groups, collections, documents)
    for kind, index, who, whom in world["grants"]:
        assign_perm("view_document", built.grantee(who, whom), built.target(kind, index))
    for collection, who, whom in world["manages"]:
        assign_perm("manage_collection", built.grantee(who, whom), collections[collection])
    return built
