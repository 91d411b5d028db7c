"""Who may do what with collections and documents: the one module that answers every "may this
user ..." question, for the ORM (Q predicates, used by the querysets' `visible_to`,
`managed_by` and `changeable_by`), for single objects (`may_*`, used by the admin and the API)
and for the retrieval statement (the SQL fragments, used by retrieval.statement).
docs/permissions.md sets the rules out as a table; in short:

- **read** a document: its owner; its collection's owner and managers; holders of a
  `view_document` grant (user or group) on it or on its collection; every active user when it
  or its collection is open to staff; superusers.
- **manage** a collection (change it, grant on it, upload into it, change, reprocess, grant on
  and delete any of its documents, delete it): its owner, holders of a `manage_collection`
  grant (user or group), superusers. A manager reads all of the collection's documents.
- **change** a document (title, metadata, owner, open flag, reprocess, grants, delete): its
  owner, its collection's managers, superusers.
- **create** a collection: the `add_collection` model permission (its creator owns it).

Model permissions (`change_collection`, `add_document`, ...) open the admin's pages, but reach
no existing collection or document by themselves.

Both ACLs are arrays of principal ids (accounts.selectors: a user is its id, a group minus
its id, ALL_STAFF 0 every active user), kept by documents.services.acl.read_acl_refresh: a
document's and a collection's `read_principals`, a collection's `manage_principals` (never
ALL_STAFF). A user's own principals come from accounts.selectors.user_principals.
"""

from __future__ import annotations

from django.db.models import Q

from accounts.selectors import ALL_STAFF, Principals, user_principals


def read_q(principals: Principals, prefix: str = "") -> Q:
    """True where the read ACL at `prefix` (e.g. "collection__") lists one of the principals."""
    return Q(**{f"{prefix}read_principals__overlap": list(principals.ids)})


def document_read_q(principals: Principals, prefix: str = "") -> Q:
    """A document (at `prefix`) is readable through its own ACL or its collection's."""
    return read_q(principals, prefix) | read_q(principals, f"{prefix}collection__")


def manager_ids(principals: Principals) -> list[int]:
    """The principals that can appear in a manage ACL: the user and their groups."""
    return [pk for pk in principals.ids if pk != ALL_STAFF]


def manage_q(principals: Principals, prefix: str = "") -> Q:
    """True where the collection at `prefix` lists the user or one of their groups as manager."""
    return Q(**{f"{prefix}manage_principals__overlap": manager_ids(principals)})


def document_change_q(user, principals: Principals, prefix: str = "") -> Q:
    """A document (at `prefix`) the user owns, or whose collection they manage."""
    return Q(**{f"{prefix}owner_id": user.pk}) | manage_q(principals, f"{prefix}collection__")


def may_manage_collection(user, collection) -> bool:
    """Whether the user may manage this collection (see the module docstring)."""
    principals = user_principals(user=user)
    if principals.unrestricted:
        return True
    return bool(set(manager_ids(principals)) & set(collection.manage_principals))


def may_read_collection(user, collection) -> bool:
    """Whether the user reads every document of this collection (through the collection's own
    ACL: its owner and managers, a `view_document` grant on it, open to staff; superusers):
    what a number counted over the whole collection needs before it may be shown."""
    principals = user_principals(user=user)
    if principals.unrestricted:
        return True
    return bool(set(principals.ids) & set(collection.read_principals))


def may_change_document(user, document) -> bool:
    """Whether the user may change, reprocess, grant on or delete this document."""
    principals = user_principals(user=user)
    if principals.unrestricted:
        return True
    if not principals.ids:
        return False
    return document.owner_id == user.pk or bool(
        set(manager_ids(principals)) & set(document.collection.manage_principals)
    )


def may_create_collection(user) -> bool:
    return user.is_active and user.has_perm("documents.add_collection")


# --- the retrieval statement's predicate ----------------------------------------------------
# The same rule as document_read_q, in SQL, for a statement that binds the reader's principal
# ids as %(principals)s::bigint[] (empty for a reader who may read nothing; the statement
# leaves the predicate out for an unrestricted one).

READABLE_COLLECTIONS_SQL = (
    "SELECT ARRAY(SELECT id FROM documents_collection "
    "WHERE read_principals && %(principals)s::bigint[]) AS ids"
)


def document_granted_sql(alias: str) -> str:
    """Document `alias` is readable through its own ACL."""
    return f"{alias}.read_principals && %(principals)s::bigint[]"


def document_in_readable_collection_sql(alias: str, readable_collections: str) -> str:
    """Document `alias` is in one of `readable_collections` (an expression giving
    READABLE_COLLECTIONS_SQL's array)."""
    return f"{alias}.collection_id = ANY(({readable_collections})::bigint[])"


def document_readable_sql(alias: str, readable_collections: str) -> str:
    """Document `alias` is readable: through its own ACL or its collection's (each half alone
    serves an index arm of the statement)."""
    return (
        f"({document_granted_sql(alias)} "
        f"OR {document_in_readable_collection_sql(alias, readable_collections)})"
    )
