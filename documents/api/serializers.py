from rest_framework import serializers

from documents.models import Collection


class CollectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Collection
        fields = ["id", "name", "description", "chunking", "chunk_tokens", "chunk_overlap"]
