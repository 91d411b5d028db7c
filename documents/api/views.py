from rest_framework import viewsets

from documents.api.serializers import CollectionSerializer
from documents.models import Collection


class CollectionViewSet(viewsets.ReadOnlyModelViewSet):
    """The collections the user may read, or in which they may read at least one document. Any
    other collection answers 404, as one that does not exist."""

    serializer_class = CollectionSerializer

    def get_queryset(self):
        return Collection.objects.visible_to(self.request.user).order_by("name")
