from __future__ import annotations

from collections.abc import Callable

from django.db import models
from django.db.models import Exists, OuterRef, Q

from accounts.selectors import Principals, user_principals
from documents.authority import document_change_q, document_read_q, manage_q, read_q


class _AuthorityQuerySet(models.QuerySet):
    def _allowed(self, user, rule: Callable[[Principals], Q]):
        """All rows for superusers, none for anonymous and inactive users, else those where
        `rule` (a documents.authority predicate of the user's principals) holds."""
        principals = user_principals(user=user)
        if principals.unrestricted:
            return self
        if not principals.ids:
            return self.none()
        return self.filter(rule(principals))


class CollectionQuerySet(_AuthorityQuerySet):
    def visible_to(self, user) -> CollectionQuerySet:
        """Collections the user may read, or in which they may read at least one document."""
        from documents.models import Document

        def rule(principals: Principals) -> Q:
            readable = Document.objects.filter(read_q(principals), collection=OuterRef("pk"))
            return read_q(principals) | Q(Exists(readable))

        return self._allowed(user, rule)

    def managed_by(self, user) -> CollectionQuerySet:
        """Collections the user may manage (documents.authority)."""
        return self._allowed(user, manage_q)


class DocumentQuerySet(_AuthorityQuerySet):
    def visible_to(self, user) -> DocumentQuerySet:
        """Documents the user may read: the one answer to that question (search uses the same
        predicate in SQL, documents.authority). A document is readable through its own ACL
        or its collection's."""
        return self._allowed(user, document_read_q)

    def changeable_by(self, user) -> DocumentQuerySet:
        """Documents the user may change, reprocess, grant on and delete (documents.authority)."""
        return self._allowed(user, lambda principals: document_change_q(user, principals))
