from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from documents.authority import may_manage_collection
from documents.embedding import embedder
from documents.models import Collection, Document


def access_document(user, pk: int) -> Document:
    """The document if the user may read it; 404 both when it is missing and when it is
    forbidden, so that its existence does not leak."""
    try:
        return Document.objects.visible_to(user).select_related("collection").get(pk=pk)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404("No such document.") from None


def access_collection(user, pk: int) -> Collection:
    """The collection if the user may read it or a document in it; 404 otherwise, alike for
    missing and forbidden."""
    try:
        return Collection.objects.visible_to(user).get(pk=pk)
    except (Collection.DoesNotExist, ValueError, TypeError):
        raise Http404("No such collection.") from None


def access_managed_collection(user, pk: int) -> Collection:
    """The collection if the user may manage it (documents.authority); 404 if they may not
    read it (alike for missing), PermissionDenied if they read it but may not manage it."""
    collection = access_collection(user, pk)
    if not may_manage_collection(user, collection):
        raise PermissionDenied("You may read this collection but not manage it.")
    return collection


def collections_readable_with_counts(user) -> QuerySet[Collection]:
    """The collections the user may read in, by name, each with `readable_documents`: how
    many of its documents the user may read (not how many it holds)."""
    readable = (
        Document.objects.visible_to(user)
        .filter(collection=OuterRef("pk"))
        .order_by()
        .values("collection")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        Collection.objects.visible_to(user)
        .annotate(readable_documents=Coalesce(Subquery(readable, output_field=IntegerField()), 0))
        .order_by("name")
    )


def documents_readable_among(user, ids: Iterable[int]) -> set[int]:
    """Which of these document ids the user may read now (missing ones are not): one query."""
    ids = set(ids)
    if not ids:
        return set()
    return set(Document.objects.visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))


def objects_readable_among(user, refs: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these ("document" | "collection", id) the user may read (a collection: read it
    or a document in it, as Collection.objects.visible_to): what the audit trail may show
    them (accounts.selectors.audit_redact)."""
    ids = {kind: {pk for k, pk in refs if k == kind} for kind in ("document", "collection")}
    readable = {("document", pk) for pk in documents_readable_among(user, ids["document"])}
    if ids["collection"]:
        visible = Collection.objects.visible_to(user).filter(pk__in=ids["collection"])
        readable |= {("collection", pk) for pk in visible.values_list("pk", flat=True)}
    return readable


def documents_embedded_otherwise(*, collection: Collection | None = None) -> QuerySet[Document]:
    """Indexed documents (of one collection, or all) whose passages come from another
    embedding model than the configured one (or another dimension): search cannot compare
    them with its queries. The one definition of "embedded otherwise": `reembed` re-embeds
    these, and search warns about them."""
    documents = Document.objects.exclude(indexed_version=None).exclude(
        indexed_version__embedding_model=settings.EMBEDDING_MODEL,
        indexed_version__embedding_dimensions=settings.EMBEDDING_DIMENSIONS,
    )
    return documents if collection is None else documents.filter(collection=collection)


def documents_embedding_stale(*, collection: Collection | None = None) -> QuerySet[Document]:
    """Indexed documents (of one collection, or all) that `reembed` embeds anew: those embedded
    otherwise, and those whose model ran with another quantisation than the configured
    embedder runs it with (what it runs, after any fallback: a fallback makes nothing stale).
    Their vectors are comparable with its own (a cosine of 0.99, checked when the embedder
    loads), so search goes on using them meanwhile. The runtime alone (PyTorch or ONNX
    Runtime unquantised) makes nothing stale: their vectors agree to a cosine of 0.9999."""
    documents = Document.objects.exclude(indexed_version=None).exclude(
        indexed_version__embedding_model=settings.EMBEDDING_MODEL,
        indexed_version__embedding_dimensions=settings.EMBEDDING_DIMENSIONS,
        indexed_version__embedding_quantize=embedder().quantize,
    )
    return documents if collection is None else documents.filter(collection=collection)


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


def load_failures(*, document_ids: Sequence[int]) -> list[tuple[str, str]]:
    """(source, error) of the documents of a load that ended in `failed`."""
    return list(
        Document.objects.filter(pk__in=document_ids, status=Document.Status.FAILED).values_list(
            "source", "error"
        )
    )
