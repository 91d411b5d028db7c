from __future__ import annotations

from django.db import models
from django.db.models import Exists, OuterRef, Q

from accounts.selectors import user_principals
from documents.authority import document_change_q, document_read_q, manage_q, read_q


class CollectionQuerySet(models.QuerySet):
    def visible_to(self, user) -> CollectionQuerySet:
        """Collections the user may read, or in which they may read at least one document."""
        from documents.models import Document

        principals = user_principals(user=user)
        if principals.unrestricted:
            return self
        if not principals.ids:
            return self.none()
        readable_document = Document.objects.filter(read_q(principals), collection=OuterRef("pk"))
        return self.filter(read_q(principals) | Q(Exists(readable_document)))

    def managed_by(self, user) -> CollectionQuerySet:
        """Collections the user may manage (documents.authority)."""
        principals = user_principals(user=user)
        if principals.unrestricted:
            return self
        if not principals.ids:
            return self.none()
        return self.filter(manage_q(principals))


class DocumentQuerySet(models.QuerySet):
    def visible_to(self, user) -> DocumentQuerySet:
        """Documents the user may read: the one answer to that question (search uses the same
        predicate in SQL, documents.authority). A document is readable through its own ACL
        or its collection's."""
        principals = user_principals(user=user)
        if principals.unrestricted:
            return self
        if not principals.ids:
            return self.none()
        return self.filter(document_read_q(principals))

    def changeable_by(self, user) -> DocumentQuerySet:
        """Documents the user may change, reprocess, grant on and delete (documents.authority)."""
        principals = user_principals(user=user)
        if principals.unrestricted:
            return self
        if not principals.ids:
            return self.none()
        return self.filter(document_change_q(user, principals))
