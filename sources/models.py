from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from documents.models import Collection, Document


class Source(models.Model):
    """Where a collection's documents live (a folder, a repository, a site...): synced so that
    edits, moves and deletions there reach the collection (sources.services)."""

    class Kind(models.TextChoices):
        FOLDER = "folder", "folder (local or mounted)"
        SMB = "smb", "SMB/CIFS share"
        GIT = "git", "git repository (one branch)"
        WEB = "web", "website (sitemap or crawl)"
        WEBDAV = "webdav", "WebDAV folder"
        S3 = "s3", "S3-compatible bucket"

    class PermissionMode(models.TextChoices):
        COLLECTION = "collection", "collection: readers of the collection read its documents"
        MIRROR = "mirror", "mirror: each document's readers come from the source's own ACL"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    location = models.CharField(
        max_length=1000,
        help_text="Folder path; smb://server/share/folder; the repository's URL (git://, "
        "https://, ssh://, a path); the site's sitemap or start URL; the WebDAV folder's URL; "
        "s3://bucket/prefix.",
    )
    branch = models.CharField(max_length=200, blank=True, help_text="Git: the branch followed.")
    endpoint = models.CharField(
        max_length=500,
        blank=True,
        help_text="S3: the service's URL for S3-compatible storage (MinIO, Ceph...); empty: AWS.",
    )
    hosts = models.JSONField(
        default=list,
        blank=True,
        help_text="Website: further host names the crawl may follow links to (the location's "
        "own host always); no other host is fetched.",
    )
    credentials = models.TextField(
        blank=True,
        editable=False,
        help_text="User name and secret, encrypted (sources.credentials); never shown.",
    )
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="sources")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Documents from this source are uploaded in this user's name.",
    )
    permission_mode = models.CharField(
        max_length=16, choices=PermissionMode.choices, default=PermissionMode.COLLECTION
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
    permission_minutes = models.PositiveIntegerField(
        default=5,
        help_text="Mirror mode: the items' permissions are read again this often, without "
        "reading their content; 0: only with each sync.",
    )
    permissions_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    checkpoint = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def next_sync_at(self, last_started: datetime | None) -> datetime | None:
        """When the worker syncs it next (beat checks every minute), given when its last run
        started; None when it is synced only when asked."""
        if not self.sync_minutes:
            return None
        if last_started is None:
            return self.created_at  # due since it was added
        return last_started + timedelta(minutes=self.sync_minutes)

    def next_permission_pass_at(self) -> datetime | None:
        """When the worker reads its items' readers next (mirror mode); None: never by
        itself."""
        if self.permission_mode != self.PermissionMode.MIRROR or not self.permission_minutes:
            return None
        if self.permissions_checked_at is None:
            return self.created_at
        return self.permissions_checked_at + timedelta(minutes=self.permission_minutes)

    def address(self, key: str) -> str:
        """Where an item of this source is: its URL (a website's items are their URLs) or
        path."""
        if self.kind == self.Kind.WEB:
            return key
        return f"{self.location.rstrip('/')}/{key}"


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
    readers = models.JSONField(
        null=True,
        blank=True,
        help_text="Mirror mode: who the source lets read the item, as read there "
        '({"users": [...], "groups": [...]}); null: its ACL could not be read (grants nothing).',
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
