"""Corpus statistics for BM25 scoring of the full-text branch, kept exact by triggers.

Statement-level triggers on the chunk table (see migration 0004) add and subtract, in the same
transaction as any chunk insert, update or delete, so the statistics always describe exactly
the passages search can see: an atomic version swap swaps its statistics with it. They are
kept per collection (LexemeStat, CollectionStat) and for the whole corpus (CorpusStat): a
search within some collections scores with their statistics summed, as one index of those
collections alone would (so loading another collection moves nothing there), a search over
all of them with the corpus's. A document moved to another collection (a trigger on the
document table) takes its passages' counts along.

The same triggers keep `retrieval_posting` (migration 0002; no model, only the retrieval
statement reads it): one row per (lexeme, passage) with the passage's BM25 term-frequency part
for that lexeme, its *impact*, under a b-tree ordered by (lexeme, impact), so that full text
can sum a passage's score from the index alone instead of reading and scoring every passage
that has a query word.
Impacts are computed with the k1, b and average passage length recorded on CorpusStat
(`posting_*`); the statement bounds what a drift of the average length can change and falls
back to scoring every match when k1 or b differ from the settings (`manage.py
postings_rebuild` recomputes them).
"""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models


class LexemeStat(models.Model):
    """How many passages of a collection contain a lexeme (its document frequency there, for
    IDF). A collection id, not a foreign key: the rows of a deleted collection's last
    passages stay, at zero."""

    pk = models.CompositePrimaryKey("lexeme", "collection_id")
    lexeme = models.TextField()
    collection_id = models.BigIntegerField()
    passages = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.lexeme} in collection {self.collection_id}: {self.passages}"


class CollectionStat(models.Model):
    """A collection's searchable passages and their summed lengths (in words)."""

    collection_id = models.BigIntegerField(primary_key=True)
    passages = models.BigIntegerField(default=0)
    length = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"collection {self.collection_id}: {self.passages} passages"


class CorpusStat(models.Model):
    """The one row of corpus totals (every collection's): searchable passages and their
    summed lengths (in words), and what the postings' impacts were computed with."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    passages = models.BigIntegerField(default=0)
    length = models.BigIntegerField(default=0)
    # What the postings' impacts were computed with (see the module docstring).
    posting_avgdl = models.FloatField(null=True)
    posting_k1 = models.FloatField(db_default=0.9)
    posting_b = models.FloatField(db_default=0.4)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="corpus_stat_single")]

    def __str__(self) -> str:
        return f"{self.passages} passages"


class EvaluationSet(models.Model):
    """Judged queries to measure search with, kept in the database so that any worker can run
    them on a schedule: from a BEIR-format folder, from the answers' feedback, or the sample
    corpus's own. `qrels` judge documents by their evaluation id (retrieval.evaluation:
    the external id of an imported document, else its source)."""

    class Source(models.TextChoices):
        BEIR = "beir", "BEIR-format folder"
        FEEDBACK = "feedback", "Answers' feedback"
        SAMPLE = "sample", "Sample corpus"

    name = models.CharField(max_length=200, unique=True)
    collection = models.ForeignKey(
        "documents.Collection",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Searched by its runs; empty: every collection (only superusers see it).",
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    origin = models.CharField(max_length=1000, blank=True, help_text="Folder it was read from.")
    queries = models.JSONField(default=dict, help_text="Query id -> text.")
    qrels = models.JSONField(default=dict, help_text="Query id -> {document id: relevance}.")
    modes = ArrayField(
        models.CharField(
            max_length=16,
            choices=[(mode, mode) for mode in ("hybrid", "dense", "fulltext", "hybrid+rerank")],
        ),
        default=list,
        help_text="Search modes each run measures, comma-separated: hybrid, dense, fulltext, "
        "hybrid+rerank.",
    )
    schedule_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Run every this many hours (by Celery beat); empty: only when asked.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EvaluationRun(models.Model):
    """One measurement of an evaluation set in one search mode, with what it ran on."""

    class Trigger(models.TextChoices):
        COMMAND = "command", "manage.py evaluate"
        SCHEDULE = "schedule", "Schedule"
        ADMIN = "admin", "Admin"

    evaluation_set = models.ForeignKey(EvaluationSet, on_delete=models.CASCADE, related_name="runs")
    collection = models.ForeignKey(
        "documents.Collection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mode = models.CharField(max_length=16)
    queries = models.PositiveIntegerField()
    ndcg_at_10 = models.FloatField()
    recall_at_100 = models.FloatField()
    mrr_at_10 = models.FloatField()
    latency_p50_ms = models.FloatField()
    latency_p95_ms = models.FloatField()
    fusion = models.JSONField(null=True, blank=True)
    embedding_model = models.CharField(max_length=200)
    embedding_runtime = models.CharField(max_length=50)
    code_version = models.CharField(max_length=100, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    # The previous run of the same set and mode, when this one fell more than
    # PRODRAG_QUALITY_DROP below it.
    regressed_from = models.FloatField(
        null=True, blank=True, help_text="The previous run's nDCG@10, if this one fell below it."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["evaluation_set", "mode", "-created_at"])]
        permissions = [("view_quality", "Can view the Quality page")]

    def __str__(self) -> str:
        return f"{self.evaluation_set} ({self.mode}): nDCG@10 {self.ndcg_at_10:.4f}"
