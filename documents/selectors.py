from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from documents.models import Collection, Document


def access_document(user, pk: int) -> Document:
    """The document if the user may read it; 404 both when it is missing and when it is
    forbidden, so that its existence does not leak."""
    try:
        return Document.objects.visible_to(user).select_related("collection").get(pk=pk)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404("No such document.") from None


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
