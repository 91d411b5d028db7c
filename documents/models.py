from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q
from django.db.models.functions import Cast
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from pgvector.django import HnswIndex, VectorField

from accounts.selectors import ALL_STAFF, user_principal
from documents.querysets import CollectionQuerySet, DocumentQuerySet


class ReadACL(models.Model):
    """Who may read: the owner, `view_document` grants, and everyone when open to staff.

    `read_principals` is a denormalised copy of those facts (see accounts.selectors for the
    encoding), rewritten by documents.services.acl.read_acl_refresh in the same transaction as any
    change to them, so that a single GIN-indexed array overlap answers "may this user read?"
    inside the retrieval SQL.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    open_to_staff = models.BooleanField(
        default=False, help_text="Every active signed-in user may read it."
    )
    read_principals = ArrayField(models.BigIntegerField(), default=list, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self._state.adding and not self.read_principals:
            # A row being inserted has no grants yet (they reference it), so its ACL is its
            # owner and open flag; later changes go through read_acl_refresh.
            open_to_all = self.open_to_staff and not getattr(self, "readers_per_document", False)
            self.read_principals = sorted(
                {user_principal(self.owner_id), *([ALL_STAFF] if open_to_all else [])}
            )
        if self._state.adding and hasattr(self, "manage_principals"):
            self.manage_principals = self.manage_principals or [user_principal(self.owner_id)]
        super().save(*args, **kwargs)


class Collection(ReadACL):
    """A named knowledge base; its read grants are inherited by all its documents.

    Who manages it (changes it, grants on it, uploads into it, changes and deletes its
    documents) is its owner and the holders of a `manage_collection` grant: `manage_principals`
    is their denormalised copy, kept by read_acl_refresh like `read_principals`, which it is
    part of (a manager reads every document of the collection). See documents.authority.
    """

    class Chunking(models.TextChoices):
        STRUCTURE = "structure", "Structure-aware (docling HybridChunker)"
        TOKENS = "tokens", "Fixed-size token windows with overlap"
        RECURSIVE = "recursive", "Recursive splitting (paragraphs, sentences, words)"
        SEMANTIC = "semantic", "Semantic (cut where neighbouring sentences diverge)"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    chunking = models.CharField(
        max_length=16,
        choices=Chunking.choices,
        default=Chunking.STRUCTURE,
        help_text="How documents are cut into passages. A change applies to documents processed "
        "afterwards; `manage.py rebuild --collection NAME` re-cuts the rest.",
    )
    chunk_tokens = models.PositiveSmallIntegerField(
        default=200,
        validators=[MinValueValidator(16), MaxValueValidator(8192)],
        help_text="Largest passage, in tokens of the embedding model's tokenizer. Title and "
        "headings are embedded with the passage, so keep it below the model's window "
        "(256 for all-MiniLM-L6-v2).",
    )
    chunk_overlap = models.PositiveSmallIntegerField(
        default=32, help_text="Tokens shared by neighbouring passages (fixed-size strategy only)."
    )
    manage_principals = ArrayField(models.BigIntegerField(), default=list, editable=False)
    fusion_dense_weight = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        verbose_name="vector share of hybrid search",
        help_text="How much hybrid search trusts the vector ranking over the full-text ranking "
        "for this collection's passages, from 0 (full text only) to 1 (vectors only). Empty: "
        "each query's own share, from how far each ranking's best passages stand out (the "
        "default). The calibrated share below is a measurement to weigh, not applied by itself.",
    )
    calibrated_dense_weight = models.FloatField(null=True, editable=False)
    calibration = models.JSONField(default=dict, editable=False)
    readers_per_document = models.BooleanField(
        default=False,
        editable=False,
        help_text="Each document's own readers (and the collection's managers) read it; the "
        "collection's view grants and open flag grant nothing. Set by a source that mirrors "
        "its permissions (sources), so that its readers never read every mirrored document.",
    )

    objects = CollectionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("view_document", "Can view the documents in this collection"),
            ("manage_collection", "Can manage this collection and all its documents"),
        ]
        indexes = [
            GinIndex(fields=["read_principals"], name="collection_read_principals"),
            GinIndex(fields=["manage_principals"], name="collection_manage_principals"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(chunk_overlap__lt=F("chunk_tokens")),
                name="collection_overlap_below_chunk_size",
                violation_error_message="The overlap must be smaller than the passage size.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Document(ReadACL):
    class Status(models.TextChoices):
        PENDING = "pending"
        PARSING = "parsing"
        CHUNKING = "chunking"
        EMBEDDING = "embedding"
        READY = "ready"
        FAILED = "failed"

    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="documents")
    title = models.CharField(max_length=500)
    source = models.CharField(max_length=1000, help_text="File name, path or URL it came from.")
    external_id = models.CharField(
        max_length=200, blank=True, help_text="Identifier in the system it was imported from."
    )
    content_type = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, help_text="Of the current version's bytes.")
    size = models.BigIntegerField(default=0, help_text="Bytes of the current version.")
    language = models.CharField(max_length=35, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    status_changed_at = models.JSONField(
        default=dict, editable=False, help_text="When the document last entered each status."
    )
    current_version = models.ForeignKey(
        "DocumentVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The latest upload.",
    )
    indexed_version = models.ForeignKey(
        "DocumentVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The version whose passages search sees; it changes in one transaction with "
        "the passages, so search never sees half of a version.",
    )
    properties = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Read from the indexed version's file: author, created, modified, page_count, "
        "language, source_path.",
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Processing tries of the current version."
    )
    progress = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Per cent of the current processing run done."
    )
    stage_seconds = models.JSONField(
        default=dict, editable=False, help_text="Seconds spent in each stage of the last run."
    )

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "sha256"], name="document_unique_content_per_collection"
            ),
            models.UniqueConstraint(
                fields=["collection", "source"], name="document_unique_source_per_collection"
            ),
            models.UniqueConstraint(
                fields=["collection", "external_id"],
                condition=~Q(external_id=""),
                name="document_unique_external_id_per_collection",
            ),
        ]
        indexes = [
            GinIndex(fields=["read_principals"], name="document_read_principals"),
            models.Index(fields=["status"], name="document_status"),
        ]

    def __str__(self) -> str:
        return self.title


def version_upload_path(version: DocumentVersion, filename: str) -> str:
    return f"originals/{version.sha256[:2]}/{version.sha256}/{filename}"


class DocumentVersion(models.Model):
    """One upload of a document's bytes; only the document's current version is searchable."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    file = models.FileField(upload_to=version_upload_path, max_length=500)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    origin = models.CharField(
        max_length=300,
        blank=True,
        help_text="Where a source had these bytes: the commit, the ETag or the modification "
        "marker (sources); empty for an upload.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    embedding_model = models.CharField(
        max_length=200, blank=True, help_text="Model that embedded this version's chunks."
    )
    embedding_dimensions = models.PositiveSmallIntegerField(null=True, blank=True)
    embedding_runtime = models.CharField(
        max_length=20, blank=True, help_text="What ran the model: onnx, torch or endpoint."
    )
    embedding_quantize = models.CharField(
        max_length=20, blank=True, help_text="How its weights were quantised: int8 or none."
    )
    text = models.TextField(
        blank=True, editable=False, help_text="The text read from the file; chunk offsets index it."
    )
    page_count = models.PositiveIntegerField(null=True, blank=True)
    chunking = models.JSONField(
        default=dict, blank=True, editable=False, help_text="Strategy and sizes that cut it."
    )

    class Meta:
        ordering = ["document", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.document} v{self.number}"


class Chunk(models.Model):
    """A searchable passage of one document version, with enough provenance to cite it."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    version = models.ForeignKey(DocumentVersion, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    heading_path = ArrayField(models.TextField(), default=list, blank=True)
    page_start = models.PositiveIntegerField(null=True, blank=True)
    page_end = models.PositiveIntegerField(null=True, blank=True)
    char_start = models.PositiveIntegerField(null=True, blank=True)
    char_end = models.PositiveIntegerField(null=True, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    # Word positions in search_vector: the passage length that BM25 normalises by.
    search_length = models.GeneratedField(
        expression=Func(F("search_vector"), function="prodrag_tsvector_length"),
        output_field=models.IntegerField(),
        db_persist=True,
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["document", "version", "ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "version", "ordinal"], name="chunk_unique_ordinal"
            ),
        ]
        indexes = [GinIndex(fields=["search_vector"], name="chunk_search_vector")]

    def __str__(self) -> str:
        return f"{self.document} v{self.version.number} #{self.ordinal}"


class ChunkEmbedding(models.Model):
    """A passage's vector, in a table of its own.

    A chunk row (text, full-text vector, provenance) is wider than the 2 KB past which
    PostgreSQL moves its largest values out of the row: a vector kept there is read through
    the TOAST table's index, one lookup per vector, which was the largest cost of an exact
    ranking (22 ms of a search at 1% visibility over 1M passages, bench.search). Rows here
    are about 1.6 KB, so the vector stays in the row, and the chunk rows that full text
    scans stay narrow.
    """

    chunk = models.OneToOneField(
        Chunk, on_delete=models.CASCADE, primary_key=True, related_name="vector"
    )
    # The chunk's document, repeated: the exact ranking reads a reader's visible documents'
    # vectors by this column's index, without touching the chunk table.
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="+")
    embedding_model = models.CharField(max_length=200)
    # No fixed dimension on the column: each embedding model gets its own partial HNSW index
    # over `embedding::vector(N)` (see migrations), so a model change never mixes dimensions.
    embedding = VectorField()

    def __str__(self) -> str:
        return f"{self.embedding_model} vector of chunk {self.chunk_id}"


class CollectionUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Collection, on_delete=models.CASCADE)


class CollectionGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Collection, on_delete=models.CASCADE)


class DocumentUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Document, on_delete=models.CASCADE)


class DocumentGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Document, on_delete=models.CASCADE)


class AvailableExtension(models.Model):
    """PostgreSQL's catalog of installable extensions (read-only)."""

    name = models.CharField(max_length=63, primary_key=True)
    default_version = models.CharField(max_length=63, null=True)  # noqa: DJ001 (catalog NULLs)
    installed_version = models.CharField(max_length=63, null=True)  # noqa: DJ001

    class Meta:
        managed = False
        db_table = "pg_available_extensions"

    def __str__(self) -> str:
        return f"{self.name} {self.installed_version or self.default_version}"


def embedding_index(*, model_name: str, dimensions: int) -> HnswIndex:
    """The HNSW (cosine) index serving one embedding model's passage vectors.

    Partial on `embedding_model`, over `embedding::vector(N)`: the retrieval query must filter
    on the same model and cast to the same dimension to use it. ef_construction 400 rather
    than pgvector's 64: at 1M passages (bench.search, ef_search 1000), the graph built with 64
    plateaued near 0.8 of the true ten nearest however far it was searched; built with 200 it
    found 0.94 over 100 queries (the queries far from every passage were missed entirely);
    built with 400, 0.99. Each step doubles the build time and slows an insert by about half;
    the index is the same size.
    """
    suffix = hashlib.sha256(f"{model_name}:{dimensions}".encode()).hexdigest()[:10]
    return HnswIndex(
        OpClass(Cast("embedding", VectorField(dimensions=dimensions)), name="vector_cosine_ops"),
        name=f"chunk_hnsw_{suffix}",
        condition=Q(embedding_model=model_name),
        m=16,
        ef_construction=400,
    )


def embedding_models_used(versions) -> set[tuple[str, int]]:
    """Every (model, dimensions) that embedded one of these versions (a DocumentVersion
    manager, the migrations' own included), and the configured one: whose indexes must
    exist."""
    found = set(
        versions.exclude(embedding_model="")
        .values_list("embedding_model", "embedding_dimensions")
        .distinct()
    )
    return {pair for pair in found if pair[1]} | {
        (settings.EMBEDDING_MODEL, settings.EMBEDDING_DIMENSIONS)
    }
