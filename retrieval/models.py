"""Corpus statistics for BM25 scoring of the full-text branch, kept exact by triggers.

Statement-level triggers on the chunk table (see migration 0001) add and subtract, in the same
transaction as any chunk insert, update or delete, so the statistics always describe exactly
the passages search can see: an atomic version swap swaps its statistics with it.
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

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="corpus_stat_single")]

    def __str__(self) -> str:
        return f"{self.passages} passages"
