"""Read and manage ACLs: the arrays that documents.authority's predicates read, rewritten from
owners, open flags and grants."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

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
    `manage_collection` grants, which read too.

    Locks: the rows, `SELECT ... FOR UPDATE` in primary-key order (so overlapping refreshes
    cannot deadlock), taken *before* the grants are read: of two transactions granting on the
    same document at once, the second waits, then reads both grants.
    """
    ids = sorted(set(ids))
    if not ids:
        return
    user_grants, group_grants = _GRANT_MODELS[model]
    with transaction.atomic():
        rows = (
            model.objects.filter(pk__in=ids)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", "owner_id", "open_to_staff")
        )
        read = {
            pk: {user_principal(owner_id), *([ALL_STAFF] if open_to_staff else [])}
            for pk, owner_id, open_to_staff in rows
        }
        if not read:
            return
        manage = {pk: {user_principal(owner_id)} for pk, owner_id, _ in rows}
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
            read[object_id].add(principal)
            if permissions[permission_id] == "manage_collection":
                manage[object_id].add(principal)
        rows = [model(pk=pk, read_principals=sorted(principals)) for pk, principals in read.items()]
        fields = ["read_principals"]
        if model is Collection:
            for row in rows:
                row.manage_principals = sorted(manage[row.pk])
            fields.append("manage_principals")
        model.objects.bulk_update(rows, fields)
