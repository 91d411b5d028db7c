from rest_framework import serializers

from core.api import json_text_valid
from documents.models import Collection
from sources.credentials import credentials_username
from sources.models import Source, SourceRun


class SourceRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SourceRun
        fields = [
            "id",
            "started_at",
            "finished_at",
            "outcome",
            "seen",
            "added",
            "changed",
            "unchanged",
            "deleted",
            "failed",
            "errors",
            "error",
        ]
        read_only_fields = fields


class SourceSerializer(serializers.ModelSerializer):
    """The credentials are write-only: `username` reads back, `secret` never does (omitted on
    a change, the stored one stays; "" with an empty username clears both)."""

    username = serializers.CharField(required=False, allow_blank=True, max_length=200)
    secret = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        max_length=4000,
        help_text="Password, token or secret key, or env:NAME (the worker's environment "
        "variable NAME). Never returned.",
    )
    has_secret = serializers.SerializerMethodField()
    collection = serializers.PrimaryKeyRelatedField(queryset=Collection.objects.none())
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = Source
        fields = [
            "id",
            "name",
            "kind",
            "location",
            "branch",
            "endpoint",
            "hosts",
            "collection",
            "permission_mode",
            "include",
            "exclude",
            "sync_minutes",
            "permission_minutes",
            "max_deletion_share",
            "username",
            "secret",
            "has_secret",
            "permissions_checked_at",
            "last_run",
            "created_at",
        ]
        read_only_fields = ["permissions_checked_at", "created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A collection the user may not read is as one that does not exist (both a 400).
        request = self.context.get("request")
        if request is not None:
            self.fields["collection"].queryset = Collection.objects.visible_to(request.user)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["username"] = credentials_username(instance.credentials)
        return data

    def get_has_secret(self, source: Source) -> bool:
        return bool(source.credentials)

    def get_last_run(self, source: Source) -> dict | None:
        run = source.runs.first()
        return SourceRunSerializer(run).data if run else None

    @staticmethod
    def _strings(value, what: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise serializers.ValidationError(f"A list of {what}.")
        json_text_valid(value)
        return value

    def validate_hosts(self, hosts):
        return self._strings(hosts, "host names")

    def validate_include(self, patterns):
        return self._strings(patterns, "glob patterns")

    def validate_exclude(self, patterns):
        return self._strings(patterns, "glob patterns")

    def validate_max_deletion_share(self, share):
        if not 0 <= share <= 1:
            raise serializers.ValidationError("A share from 0 to 1.")
        return share


class SyncRequestSerializer(serializers.Serializer):
    allow_deletions = serializers.BooleanField(
        default=False, help_text="Apply deletions beyond the source's max deletion share."
    )
