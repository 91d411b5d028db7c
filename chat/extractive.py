"""Answers without a language model: the sentences of the retrieved sources that share the
most (and the rarest) words with the question, quoted with their citations."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from chat.context import ContextPassage

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*\u2022] )")
_WORD = re.compile(r"\w+")
# Too common to say what a sentence is about (English; other languages just score lower).
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "could", "did", "do", "does", "for",
    "from", "had", "has", "have", "how", "i", "if", "in", "is", "it", "its", "may", "me", "my",
    "of", "on", "or", "our", "shall", "should", "so", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what",
    "when", "where", "which", "who", "whom", "why", "will", "with", "would", "you", "your",
    "about", "after", "all", "also", "any", "been", "before", "being", "but", "each", "into",
    "more", "most", "much", "no", "not", "only", "other", "over", "same", "some", "such",
    "through", "under", "until", "up", "very",
})
# fmt: on
MAX_SENTENCES = 3


def _terms(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1]


def _stem(word: str) -> str:
    """Crude stemming: an inflection off, then the first six letters, so that "days" meets
    "day" and "approvals" meets "approved"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:6]


def answer_extractive(question: str, sources: Sequence[ContextPassage]) -> str:
    """Up to MAX_SENTENCES quoted sentences, best first, each followed by its source number.
    A sentence scores the IDF (over all the sources' sentences) of the question's words it
    contains, with a small preference for better-ranked sources; with no shared word at all,
    the best source's opening sentence is quoted."""
    sentences = [
        (source.number, rank, sentence.strip())
        for rank, source in enumerate(sources)
        for sentence in _SENTENCE_END.split(source.text)
        if len(sentence.strip()) > 1
    ]
    if not sentences:
        return ""
    wanted = set(_terms(question))
    seen = Counter(term for _, _, s in sentences for term in set(_terms(s)))
    scored = []
    for position, (number, rank, sentence) in enumerate(sentences):
        shared = wanted & set(_terms(sentence))
        score = sum(math.log(1 + len(sentences) / seen[t]) for t in shared)
        if score > 0:
            scored.append((-score * (1 - 0.05 * min(rank, 10)), position, number, sentence))
    if not scored:
        number, _, sentence = sentences[0]
        return f"\u201c{_clip(sentence)}\u201d [{number}]"
    chosen = sorted(scored)[:MAX_SENTENCES]
    return "\n".join(
        f"- \u201c{_clip(sentence)}\u201d [{number}]" for _, _, number, sentence in chosen
    )


def _clip(sentence: str, limit: int = 400) -> str:
    sentence = " ".join(sentence.split())
    return (
        sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + "\u2026"
    )
