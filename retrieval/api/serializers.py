from rest_framework import serializers

from core.api import json_text_valid
from retrieval.selectors import MAX_K, MODES
from retrieval.types import Filters


class FiltersSerializer(serializers.Serializer):
    collections = serializers.ListField(child=serializers.IntegerField(), required=False)
    document_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    content_types = serializers.ListField(child=serializers.CharField(), required=False)
    languages = serializers.ListField(child=serializers.CharField(), required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    modified_after = serializers.DateTimeField(required=False)
    modified_before = serializers.DateTimeField(required=False)
    metadata = serializers.DictField(
        required=False, validators=[json_text_valid], help_text="JSON the metadata must contain."
    )
    properties = serializers.DictField(
        required=False,
        validators=[json_text_valid],
        help_text="JSON the extracted properties (title, author...) must contain.",
    )

    @staticmethod
    def filters(data: dict) -> Filters:
        """The retrieval filters for validated data."""
        return Filters(
            **{
                name: tuple(value) if isinstance(value, list) else value
                for name, value in data.items()
            }
        )


class SearchRequestSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=10)
    mode = serializers.ChoiceField(choices=MODES, default="hybrid")
    filters = FiltersSerializer(required=False)
    per_document = serializers.BooleanField(
        default=False, help_text="At most one passage (the best) per document."
    )
    expand = serializers.BooleanField(default=False, help_text="Also search rephrasings.")


class PassageSerializer(serializers.Serializer):
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    title = serializers.CharField()
    source = serializers.CharField()
    content_type = serializers.CharField()
    collection_id = serializers.IntegerField()
    collection = serializers.CharField()
    version_id = serializers.IntegerField()
    version = serializers.IntegerField()
    ordinal = serializers.IntegerField()
    heading_path = serializers.ListField(child=serializers.CharField())
    page_start = serializers.IntegerField(allow_null=True)
    page_end = serializers.IntegerField(allow_null=True)
    char_start = serializers.IntegerField(allow_null=True)
    char_end = serializers.IntegerField(allow_null=True)
    text = serializers.CharField()
    score = serializers.FloatField()
    similarity = serializers.FloatField(allow_null=True)
    bm25 = serializers.FloatField(allow_null=True)
    dense_rank = serializers.IntegerField(allow_null=True)
    fulltext_rank = serializers.IntegerField(allow_null=True)
    dense_share = serializers.FloatField(
        allow_null=True,
        help_text="Hybrid modes: the vector ranking's share in this passage's fused score "
        "(each query's own, or its collection's where a manager set one).",
    )
    fulltext_coverage = serializers.FloatField(
        allow_null=True,
        help_text="Adaptive fusion: how much of the query full text's best passage holds (0 to "
        "1), which scales the full-text part of the score.",
    )


class SearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    mode = serializers.CharField()
    passages = PassageSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
    expansions = serializers.ListField(child=serializers.CharField())
    seconds = serializers.FloatField()
    fallback = serializers.ChoiceField(
        choices=["fulltext"],
        allow_null=True,
        help_text="`fulltext` when vector search failed (embedding model or vector index) and "
        "the passages come from full-text search alone; null otherwise.",
    )
