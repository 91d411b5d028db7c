from __future__ import annotations

from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import Http404

from documents.models import Collection, Document


def access_document(user, pk: int) -> Document:
    """The document if the user may read it; 404 both when it is missing and when it is
    forbidden, so that its existence does not leak."""
    try:
        return Document.objects.visible_to(user).select_related("collection").get(pk=pk)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404("No such document.") from None


def may_change(user, document_or_collection, action: str) -> bool:
    """Whether a user who may read this document or collection may also `action` ("add",
    "change", "delete") documents in it: its owner (or its collection's), a superuser, or a
    holder of Django's model permission for that action, as in the admin."""
    collection = getattr(document_or_collection, "collection", document_or_collection)
    return (
        user.is_superuser
        or user.pk in (document_or_collection.owner_id, collection.owner_id)
        or user.has_perm(f"documents.{action}_document")
    )


def access_collection(user, pk: int) -> Collection:
    """The collection if the user may read it or a document in it; 404 otherwise, alike for
    missing and forbidden."""
    try:
        return Collection.objects.visible_to(user).get(pk=pk)
    except (Collection.DoesNotExist, ValueError, TypeError):
        raise Http404("No such collection.") from None


def documents_embedded_otherwise(*, collection: Collection) -> QuerySet[Document]:
    """A collection's indexed documents whose passages come from another embedding model than
    the configured one (or another dimension): search cannot compare them with its queries."""
    return (
        Document.objects.filter(collection=collection)
        .exclude(indexed_version=None)
        .exclude(
            indexed_version__embedding_model=settings.EMBEDDING_MODEL,
            indexed_version__embedding_dimensions=settings.EMBEDDING_DIMENSIONS,
        )
    )


def document_status_counts() -> dict[str, int]:
    """How many documents are in each ingestion status (every status, zeros included)."""
    counts = dict.fromkeys(Document.Status.values, 0)
    counts.update(
        Document.objects.order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return counts
