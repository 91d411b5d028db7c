"""Read and manage ACLs: the arrays that documents.authority's predicates read, rewritten from
owners, open flags and grants."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Value

from accounts.selectors import ALL_STAFF, group_principal, user_principal
from documents.models import (
    Collection,
    CollectionGroupObjectPermission,
    CollectionUserObjectPermission,
    Document,
    DocumentGroupObjectPermission,
    DocumentUserObjectPermission,
)

_GRANT_MODELS = {
    Collection: (CollectionUserObjectPermission, CollectionGroupObjectPermission),
    Document: (DocumentUserObjectPermission, DocumentGroupObjectPermission),
}


def read_acl_refresh(*, model: type[Collection] | type[Document], ids: Iterable[int]) -> None:
    """Rewrite the ACL arrays of these collections or documents from their owner, their
    open-to-staff flag and their grants (documents.authority): `read_principals` from
    `view_document` grants and, for a collection, `manage_principals` from its owner and
    `manage_collection` grants, which read too. A collection whose readers are set per document
    (`readers_per_document`) is read by its managers alone: its view grants and open flag
    grant nothing.

    Locks: the rows, `SELECT ... FOR UPDATE` in primary-key order (so overlapping refreshes
    cannot deadlock), taken *before* the grants are read: of two transactions granting on the
    same document at once, the second waits, then reads both grants.
    """
    ids = sorted(set(ids))
    if not ids:
        return
    user_grants, group_grants = _GRANT_MODELS[model]
    with transaction.atomic():
        locked = model.objects.filter(pk__in=ids).order_by("pk").select_for_update()
        rows = (
            locked.values_list("pk", "owner_id", "open_to_staff", "readers_per_document")
            if model is Collection
            else locked.annotate(per_document=Value(False)).values_list(
                "pk", "owner_id", "open_to_staff", "per_document"
            )
        )
        read = {
            pk: {user_principal(owner_id), *([ALL_STAFF] if open_to_staff and not own else [])}
            for pk, owner_id, open_to_staff, own in rows
        }
        if not read:
            return
        per_document = {pk for pk, _, _, own in rows if own}
        manage = {pk: {user_principal(owner_id)} for pk, owner_id, _, _ in rows}
        codenames = ["manage_collection"] if model is Collection else []
        permissions = dict(
            Permission.objects.filter(
                content_type=ContentType.objects.get_for_model(model),
                codename__in=["view_document", *codenames],
            ).values_list("pk", "codename")
        )
        granted = [
            (object_id, user_principal(user_id), permission_id)
            for object_id, user_id, permission_id in user_grants.objects.filter(
                content_object_id__in=read, permission__in=permissions
            ).values_list("content_object_id", "user_id", "permission_id")
        ] + [
            (object_id, group_principal(group_id), permission_id)
            for object_id, group_id, permission_id in group_grants.objects.filter(
                content_object_id__in=read, permission__in=permissions
            ).values_list("content_object_id", "group_id", "permission_id")
        ]
        for object_id, principal, permission_id in granted:
            managing = permissions[permission_id] == "manage_collection"
            if managing or object_id not in per_document:
                read[object_id].add(principal)
            if managing:
                manage[object_id].add(principal)
        rows = [model(pk=pk, read_principals=sorted(principals)) for pk, principals in read.items()]
        fields = ["read_principals"]
        if model is Collection:
            for row in rows:
                row.manage_principals = sorted(manage[row.pk])
            fields.append("manage_principals")
        model.objects.bulk_update(rows, fields)


def document_readers_set(
    *, document: Document, users: set[int], groups: set[int], everyone: bool
) -> bool:
    """Make the document's readers exactly these users and groups (ids), open to staff when
    `everyone`, besides its owner and its collection's managers: its `view_document` grants
    are replaced (each change audited and its ACL rewritten, by documents.signals). For
    sources that mirror their items' permissions. Returns whether anything changed.

    Locks: the document's row, before its grants are read (two calls for one document run
    one after the other)."""
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=document.pk)
        view = Permission.objects.get(
            content_type=ContentType.objects.get_for_model(Document), codename="view_document"
        )
        changed = False
        for grants, field, wanted in (
            (DocumentUserObjectPermission, "user_id", users),
            (DocumentGroupObjectPermission, "group_id", groups),
        ):
            held = {
                getattr(grant, field): grant
                for grant in grants.objects.filter(content_object=document, permission=view)
            }
            for principal, grant in held.items():
                if principal not in wanted:
                    grant.delete()
                    changed = True
            for principal in sorted(wanted - held.keys()):
                grants(content_object=document, permission=view, **{field: principal}).save()
                changed = True
        if document.open_to_staff != everyone:
            document.open_to_staff = everyone
            document.save(update_fields=["open_to_staff", "updated_at"])
            changed = True
        return changed
