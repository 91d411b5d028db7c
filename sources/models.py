from django.conf import settings
from django.db import models
from django.utils import timezone

from documents.models import Collection, Document


class Source(models.Model):
    """Where a collection's documents live (a folder, a repository, a site...): synced so that
    edits, moves and deletions there reach the collection (sources.services)."""

    class Kind(models.TextChoices):
        FOLDER = "folder", "folder (local or mounted)"
        GIT = "git", "git repository (one branch)"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    location = models.CharField(
        max_length=1000,
        help_text="Folder path, or the repository's URL (git://, https://, a path).",
    )
    branch = models.CharField(max_length=200, blank=True, help_text="Git: the branch followed.")
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="sources")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Documents from this source are uploaded in this user's name.",
    )
    include = models.JSONField(
        default=list, blank=True, help_text="Glob patterns of item paths to index; empty: all."
    )
    exclude = models.JSONField(default=list, blank=True, help_text="Glob patterns to leave out.")
    max_deletion_share = models.FloatField(
        default=0.1,
        help_text="A sync that would delete more than this share of the source's documents "
        "deletes none and says why.",
    )
    sync_minutes = models.PositiveIntegerField(
        default=60, help_text="Synced this often by the worker; 0: only when asked."
    )
    checkpoint = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class SourceItem(models.Model):
    """One item of a source as last synced: its key in the source (a relative path), the
    marker that tells whether it changed (size and modification time, an ETag, a commit), and
    the document it became."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=1000)
    marker = models.CharField(max_length=200)
    revision = models.CharField(
        max_length=64, blank=True, help_text="Git: the commit the item was last fetched at."
    )
    document = models.ForeignKey(
        Document, null=True, on_delete=models.SET_NULL, related_name="source_items"
    )
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="one_item_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.key}"


class SourceRun(models.Model):
    """One sync of a source: what it saw and did, or why it stopped."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed: the source could not be read; nothing deleted"
        HELD = "held", "done, but deletions held: more than the source's max deletion share"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.RUNNING)
    seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text="[item key, reason] of each item that failed."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.source} {self.started_at:%Y-%m-%d %H:%M:%S}: {self.outcome}"
