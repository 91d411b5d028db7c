"""Corpus statistics for BM25 scoring of the full-text branch, kept exact by triggers.

Statement-level triggers on the chunk table (see migration 0001) add and subtract, in the same
transaction as any chunk insert, update or delete, so the statistics always describe exactly
the passages search can see: an atomic version swap swaps its statistics with it.

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

from django.db import models


class LexemeStat(models.Model):
    """How many passages contain a lexeme (its document frequency, for IDF)."""

    lexeme = models.TextField(primary_key=True)
    passages = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.lexeme}: {self.passages}"


class CorpusStat(models.Model):
    """The one row of corpus totals: searchable passages and their summed lengths (in words)."""

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
