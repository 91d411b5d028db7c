from django.conf import settings
from rest_framework import serializers

from core.api import json_text_valid
from documents.models import Chunk, Collection, Document, DocumentVersion


class CollectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Collection
        fields = ["id", "name", "description", "chunking", "chunk_tokens", "chunk_overlap"]


class MetadataField(serializers.JSONField):
    """User metadata: a JSON object (as JSON, or as a string of it in a multipart form)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Metadata must be a JSON object.")
        json_text_valid(value)
        return value


class DocumentSerializer(serializers.ModelSerializer):
    collection_name = serializers.CharField(source="collection.name", read_only=True)
    version = serializers.IntegerField(source="current_version.number", read_only=True)
    indexed_version = serializers.IntegerField(source="indexed_version.number", read_only=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "collection",
            "collection_name",
            "title",
            "source",
            "external_id",
            "content_type",
            "size",
            "language",
            "metadata",
            "properties",
            "status",
            "progress",
            "error",
            "attempts",
            "stage_seconds",
            "status_changed_at",
            "version",
            "indexed_version",
            "open_to_staff",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The document's bytes (multipart).")
    collection = serializers.IntegerField(help_text="Id of a collection the user manages.")
    title = serializers.CharField(max_length=500, required=False, default="")
    external_id = serializers.CharField(max_length=200, required=False, default="")
    metadata = MetadataField(required=False, default=dict)
    open_to_staff = serializers.BooleanField(required=False, default=False)

    def validate_file(self, upload):
        limit = settings.INGEST_LIMITS["max_file_bytes"]
        if upload.size > limit:
            raise serializers.ValidationError(
                f"The file is {upload.size:,} bytes; the limit is {limit:,} "
                "(PRODRAG_MAX_FILE_BYTES)."
            )
        return upload


class DocumentUploadedSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["created", "new_version", "unchanged"])
    document = DocumentSerializer()


class DocumentChangeSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=500, required=False)
    metadata = MetadataField(required=False)


class VersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DocumentVersion
        fields = [
            "id",
            "number",
            "sha256",
            "size",
            "content_type",
            "page_count",
            "chunking",
            "embedding_model",
            "embedding_dimensions",
            "embedding_runtime",
            "embedding_quantize",
            "origin",
            "created_at",
        ]
        read_only_fields = fields


class ChunkSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Chunk
        fields = [
            "id",
            "version",
            "ordinal",
            "text",
            "token_count",
            "heading_path",
            "page_start",
            "page_end",
            "char_start",
            "char_end",
            "metadata",
        ]
        read_only_fields = fields
