from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as ModelValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from documents.models import Collection
from documents.selectors import access_managed_collection
from sources.api.serializers import SourceRunSerializer, SourceSerializer, SyncRequestSerializer
from sources.credentials import credentials_changed
from sources.models import Source
from sources.services import source_save
from sources.tasks import source_sync_run


@extend_schema_view(
    sync=extend_schema(request=SyncRequestSerializer, responses={202: SourceSerializer}),
    runs=extend_schema(responses=SourceRunSerializer(many=True)),
)
class SourceViewSet(viewsets.ModelViewSet):
    """The sources of the collections the user manages (documents.authority); any other
    source answers 404, as one that does not exist. Creating one needs the right to manage
    its collection (404 for a collection the user may not read, 403 for one they read only).
    Deleting a source stops its syncs and keeps its documents."""

    serializer_class = SourceSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        sources = Source.objects.select_related("collection").order_by("name", "id")
        if self.request.user.is_superuser:
            return sources
        return sources.filter(collection__in=Collection.objects.managed_by(self.request.user))

    def _managed(self, collection: Collection) -> Collection:
        try:
            return access_managed_collection(self.request.user, collection.pk)
        except PermissionDenied:
            raise exceptions.PermissionDenied(
                "You may read this collection but not add sources to it: that needs the right "
                "to manage it."
            ) from None

    def _save(self, serializer, source: Source) -> Source:
        data = dict(serializer.validated_data)
        username, secret = data.pop("username", None), data.pop("secret", None)
        for field, value in data.items():
            setattr(source, field, value)
        credentials = credentials_changed(source.credentials, username=username, secret=secret)
        try:
            return source_save(source=source, credentials=credentials)
        except ModelValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict) from None

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self._managed(serializer.validated_data["collection"])
        source = self._save(serializer, Source(owner=request.user))
        return Response(self.get_serializer(source).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        source = self.get_object()
        serializer = self.get_serializer(source, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if "collection" in serializer.validated_data:
            self._managed(serializer.validated_data["collection"])
        source = self._save(serializer, source)
        return Response(self.get_serializer(source).data)

    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Queue a sync of the source now (its runs tell how it went)."""
        source = self.get_object()
        given = SyncRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        allow = given.validated_data["allow_deletions"]
        transaction.on_commit(lambda: source_sync_run.delay(source.pk, allow_deletions=allow))
        return Response(self.get_serializer(source).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def runs(self, request, pk=None):
        source = self.get_object()
        page = self.paginate_queryset(source.runs.order_by("-started_at"))
        return self.get_paginated_response(SourceRunSerializer(page, many=True).data)
