from django.core.exceptions import PermissionDenied
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import Conflict
from documents.api.serializers import (
    ChunkSerializer,
    CollectionSerializer,
    DocumentChangeSerializer,
    DocumentSerializer,
    DocumentUploadedSerializer,
    DocumentUploadSerializer,
    VersionSerializer,
)
from documents.authority import may_change_document
from documents.models import Chunk, Collection, Document
from documents.selectors import access_document, access_managed_collection
from documents.services.queue import documents_reprocess
from documents.services.uploads import (
    DocumentConflict,
    UploadOutcome,
    document_create,
    document_delete,
    document_update,
)


class CollectionViewSet(viewsets.ReadOnlyModelViewSet):
    """The collections the user may read, or in which they may read at least one document. Any
    other collection answers 404, as one that does not exist."""

    serializer_class = CollectionSerializer

    def get_queryset(self):
        return Collection.objects.visible_to(self.request.user).order_by("name")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("collection", int),
            OpenApiParameter("status", str, enum=Document.Status.values),
            OpenApiParameter("content_type", str),
            OpenApiParameter("external_id", str),
            OpenApiParameter("title", str, description="Contained in the title (any case)."),
            OpenApiParameter("created_after", str, description="ISO 8601 date or time."),
            OpenApiParameter("created_before", str, description="ISO 8601 date or time."),
        ]
    ),
    create=extend_schema(
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={201: DocumentUploadedSerializer, 200: DocumentUploadedSerializer},
    ),
    partial_update=extend_schema(request=DocumentChangeSerializer),
    reprocess=extend_schema(request=None, responses={202: DocumentSerializer}),
    versions=extend_schema(responses=VersionSerializer(many=True)),
    chunks=extend_schema(responses=ChunkSerializer(many=True)),
)
class DocumentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The documents the user may read. Uploading needs the right to manage the collection;
    changing, deleting and reprocessing the right to change the document (its owner or a
    manager of its collection; documents.authority): otherwise 403. A document or collection
    the user may not read is a 404, as one that does not exist."""

    serializer_class = DocumentSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, parsers.JSONParser]
    FILTERS = {
        "collection": "collection_id",
        "status": "status",
        "content_type": "content_type",
        "external_id": "external_id",
        "title": "title__icontains",
        "created_after": "created_at__gte",
        "created_before": "created_at__lt",
    }

    def get_queryset(self):
        documents = (
            Document.objects.visible_to(self.request.user)
            .select_related("collection", "current_version", "indexed_version")
            .order_by("-created_at", "-id")
        )
        conditions = {}
        for name, lookup in self.FILTERS.items():
            value = self.request.query_params.get(name)
            if not value:
                continue
            if "\x00" in value:
                raise exceptions.ValidationError({name: ["May not contain the NUL character."]})
            if name.startswith("created_"):
                value = parse_datetime(value) or parse_datetime(f"{value}T00:00:00+00:00")
            elif name == "collection":
                value = int(value) if value.isascii() and value.isdigit() else None
            if value is None:
                raise exceptions.ValidationError(
                    {name: [f"Not a valid {'date or time' if 'created' in name else 'id'}."]}
                )
            conditions[lookup] = value
        return documents.filter(**conditions)

    def get_object(self):
        return access_document(self.request.user, self.kwargs["pk"])

    def _changeable(self, action_name: str) -> Document:
        document = self.get_object()
        if not may_change_document(self.request.user, document):
            raise exceptions.PermissionDenied(
                f"You may read this document but not {action_name} it."
            )
        return document

    def create(self, request):
        given = DocumentUploadSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            collection = access_managed_collection(request.user, data["collection"])
        except PermissionDenied:
            raise exceptions.PermissionDenied(
                "You may read this collection but not upload into it: that needs the right to "
                "manage it."
            ) from None
        try:
            document, outcome = document_create(
                collection=collection,
                owner=request.user,
                upload=data["file"],
                title=data["title"],
                external_id=data["external_id"],
                metadata=data["metadata"],
                open_to_staff=data["open_to_staff"],
            )
        except DocumentConflict as conflict:
            raise Conflict(str(conflict)) from None
        body = {"outcome": outcome, "document": DocumentSerializer(document).data}
        unchanged = outcome == UploadOutcome.UNCHANGED
        return Response(body, status=status.HTTP_200_OK if unchanged else status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        document = self._changeable("change")
        given = DocumentChangeSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        document_update(document=document, **given.validated_data)
        return Response(DocumentSerializer(self.get_object()).data)

    def destroy(self, request, pk=None):
        document_delete(document=self._changeable("delete"))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Parse, chunk and embed the current version again (e.g. after a failure)."""
        document = self._changeable("change")
        documents_reprocess(documents=Document.objects.filter(pk=document.pk))
        return Response(DocumentSerializer(self.get_object()).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        document = self.get_object()
        page = self.paginate_queryset(document.versions.order_by("-number"))
        return self.get_paginated_response(VersionSerializer(page, many=True).data)

    @action(detail=True, methods=["get"])
    def chunks(self, request, pk=None):
        """The passages search sees: those of the indexed version."""
        document = self.get_object()
        chunks = Chunk.objects.filter(version_id=document.indexed_version_id).select_related(
            "version"
        )
        page = self.paginate_queryset(chunks.order_by("ordinal"))
        return self.get_paginated_response(ChunkSerializer(page, many=True).data)
