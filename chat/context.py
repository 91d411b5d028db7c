"""From ranked passages to the numbered context an answer is generated from."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from documents.chunking import token_count
from retrieval.types import Passage

_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class ContextPassage:
    """One numbered source of an answer: one passage, or neighbours of one document merged."""

    number: int
    passages: tuple[Passage, ...]
    text: str
    tokens: int

    @property
    def first(self) -> Passage:
        return self.passages[0]

    @property
    def score(self) -> float:
        return max(passage.score for passage in self.passages)

    @property
    def pages(self) -> tuple[int | None, int | None]:
        starts = [p.page_start for p in self.passages if p.page_start is not None]
        ends = [p.page_end for p in self.passages if p.page_end is not None]
        return (min(starts) if starts else None, max(ends) if ends else None)


def context_assemble(
    passages: Sequence[Passage],
    *,
    budget_tokens: int,
    min_similarity: float,
    duplicate_overlap: float = 0.9,
) -> list[ContextPassage]:
    """Keep the passages relevant enough (similarity to the question at least
    `min_similarity`; passages without a similarity, from a full-text-only search, count as
    relevant because their words matched), drop near-duplicates (word-set overlap of at least
    `duplicate_overlap` with a better passage: the same text in two documents or versions),
    merge passages that are neighbours in one document version into one source, and take
    sources in order of relevance while they fit in `budget_tokens`."""
    relevant = [p for p in passages if p.similarity is None or p.similarity >= min_similarity]
    kept: list[tuple[Passage, set[str]]] = []
    for passage in relevant:
        words = set(_WORDS.findall(passage.text.lower()))
        if any(_overlap(words, other) >= duplicate_overlap for _, other in kept):
            continue
        kept.append((passage, words))
    groups: list[list[Passage]] = []
    for passage, _ in kept:
        neighbour = next(
            (
                group
                for group in groups
                if group[0].version_id == passage.version_id
                and any(abs(member.ordinal - passage.ordinal) == 1 for member in group)
            ),
            None,
        )
        if neighbour is None:
            groups.append([passage])
        else:
            neighbour.append(passage)
    sources: list[ContextPassage] = []
    used = 0
    for group in groups:
        ordered = tuple(sorted(group, key=lambda passage: passage.ordinal))
        text = "\n\n".join(passage.text for passage in ordered)
        tokens = token_count(text)
        if used + tokens > budget_tokens:
            continue
        used += tokens
        sources.append(ContextPassage(len(sources) + 1, ordered, text, tokens))
    return sources


def _overlap(words: set[str], other: set[str]) -> float:
    if not words or not other:
        return 0.0
    return len(words & other) / min(len(words), len(other))
