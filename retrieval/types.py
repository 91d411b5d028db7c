"""What search takes and gives: the modes, document filters and fusion settings of a search,
and the passages it returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

DENSE, FULLTEXT, HYBRID = "dense", "fulltext", "hybrid"


@dataclass(frozen=True)
class Filters:
    """Document-level conditions, all of which a passage's document must meet."""

    collections: tuple[int, ...] = ()
    document_ids: tuple[int, ...] = ()
    content_types: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    metadata: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Fusion:
    """How hybrid search fuses its two rankings.

    `adaptive` (the default) sets the vector ranking's share per query from the two
    rankings themselves (retrieval.statement) and scales the full-text side by how much of
    the query its best passage covers; `convex` and `rrf` give the vector ranking the share
    dense_weight / (dense_weight + fulltext_weight) for every query. With `by_collection`, a
    passage whose collection has a share set by a manager gets that share instead; `fixed`
    (at_share) gives every passage the share of the weights, whatever the method."""

    method: str  # "adaptive", "convex" or "rrf"
    rrf_k: int
    dense_weight: float
    fulltext_weight: float
    by_collection: bool = False
    fixed: bool = False

    @property
    def dense_share(self) -> float:
        total = self.dense_weight + self.fulltext_weight
        return self.dense_weight / total if total > 0 else 0.5

    @property
    def per_query(self) -> bool:
        """Whether the share is the adaptive one of each query (where no manager set one)."""
        return self.method == "adaptive" and not self.fixed

    def at_share(self, share: float) -> Fusion:
        """The same fusion with this vector share for every passage and query."""
        return replace(
            self, dense_weight=share, fulltext_weight=1 - share, by_collection=False, fixed=True
        )


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    score: float
    dense_rank: int | None
    fulltext_rank: int | None
    similarity: float | None
    bm25: float | None
    document_id: int
    title: str
    source: str
    content_type: str
    collection_id: int
    collection: str
    version_id: int
    version: int
    ordinal: int
    heading_path: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    char_start: int | None
    char_end: int | None
    text: str
    # Hybrid fusion: the vector share its score was fused with, and (adaptive fusion) full
    # text's coverage of the query that scaled the full-text part; None otherwise.
    dense_share: float | None = None
    fulltext_coverage: float | None = None


@dataclass
class SearchResult:
    query: str
    mode: str
    passages: list[Passage]
    warnings: list[str] = field(default_factory=list)
    expansions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # "fulltext" when the vector side failed and the passages come from full text alone.
    fallback: str | None = None
