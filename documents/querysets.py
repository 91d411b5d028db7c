from __future__ import annotations

from django.db import models
from django.db.models import Exists, OuterRef, Q

from accounts.selectors import Principals, user_principals


def read_acl_matches(principals: Principals, prefix: str = "") -> Q:
    """True where the read ACL at `prefix` (e.g. "collection__") lists one of the principals."""
    return Q(**{f"{prefix}read_principals__overlap": list(principals.ids)})


class CollectionQuerySet(models.QuerySet):
    def visible_to(self, user) -> CollectionQuerySet:
        """Collections the user may read, or in which they may read at least one document."""
        from documents.models import Document

        principals = user_principals(user=user)
        if principals.unrestricted:
            return self
        if not principals.ids:
            return self.none()
        readable_document = Document.objects.filter(
            read_acl_matches(principals), collection=OuterRef("pk")
        )
        return self.filter(read_acl_matches(principals) | Q(Exists(readable_document)))


class DocumentQuerySet(models.QuerySet):
    def visible_to(self, user) -> DocumentQuerySet:
        """Documents the user may read: the one answer to that question (search uses the same
        predicate in SQL). A document is readable through its own ACL or its collection's."""
        principals = user_principals(user=user)
        if principals.unrestricted:
            return self
        if not principals.ids:
            return self.none()
        return self.filter(
            read_acl_matches(principals) | read_acl_matches(principals, prefix="collection__")
        )
