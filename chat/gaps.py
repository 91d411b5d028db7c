"""Knowledge gaps: the questions the documents do not answer, grouped by what they ask.

The questions that got a "not covered" answer or a not-helpful rating (chat.quality, which
keeps only those the viewer may see) are embedded with the search model and grouped greedily,
oldest first: a question joins the group whose mean vector is most similar to its own, if that
cosine similarity reaches SIMILAR, else it starts a group. Groups are listed largest first,
each with the question nearest its mean as the example. Questions are shown with personal
identifiers masked (accounts.pii), as the audit trail keeps them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from accounts.pii import pii_mask
from chat.models import Message
from chat.quality import Table, gap_questions
from documents.embedding import embedder
from documents.models import Collection

# The most recent questions grouped: embedding them is most of the page's time.
MOST_QUESTIONS = 500
# Cosine similarity of all-MiniLM-L6-v2 vectors at which two questions ask the same thing:
# rephrasings of one question score 0.6 to 0.9, questions on different subjects under 0.3.
SIMILAR = 0.6
# Groups listed on the page (the CSV holds all).
SHOWN = 25


@dataclass(frozen=True)
class Gap:
    example: str
    questions: list[str]
    collections: list[str]
    last_asked: dt.datetime
    not_covered: int
    not_helpful: int

    @property
    def count(self) -> int:
        return len(self.questions)


def gaps_grouped(user, *, since: dt.date) -> list[Gap]:
    """The viewer's knowledge gaps since `since`, largest group first (then latest)."""
    found = gap_questions(user, since=since)[:MOST_QUESTIONS]
    if not found:
        return []
    found.reverse()  # oldest first: a group's example settles early
    # The asker's own words: a rewritten query may carry an earlier answer's text, from
    # documents outside what the viewer reads.
    vectors = embedder().embed([question.text for question, _, _ in found])
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for index, vector in enumerate(vectors):
        best, similarity = -1, SIMILAR
        for number, total in enumerate(sums):
            score = float(vector @ total) / float(np.linalg.norm(total))
            if score >= similarity:
                best, similarity = number, score
        if best < 0:
            groups.append([index])
            sums.append(vector.copy())
        else:
            groups[best].append(index)
            sums[best] += vector
    names = dict(Collection.objects.values_list("pk", "name"))
    gaps = []
    for members, total in zip(groups, sums, strict=True):
        centre = total / np.linalg.norm(total)
        nearest = max(members, key=lambda i: float(vectors[i] @ centre))
        questions: list[Message] = [found[i][0] for i in members]
        gaps.append(
            Gap(
                example=pii_mask(found[nearest][0].text),
                questions=[pii_mask(q.text) for q in reversed(questions)],
                collections=sorted(
                    {names[pk] for i in members for pk in found[i][2] if pk in names}
                ),
                last_asked=max(q.created_at for q in questions),
                not_covered=sum("not covered" in found[i][1] for i in members),
                not_helpful=sum("not helpful" in found[i][1] for i in members),
            )
        )
    return sorted(gaps, key=lambda gap: (-gap.count, -gap.last_asked.timestamp()))


GAP_COLUMNS = (
    "example question", "questions", "not covered", "not helpful", "collections",
    "last asked (UTC)", "all questions",
)  # fmt: skip


def gaps_table(gaps: list[Gap]) -> Table:
    return Table(
        "Knowledge gaps",
        GAP_COLUMNS,
        [
            (
                gap.example,
                gap.count,
                gap.not_covered,
                gap.not_helpful,
                "; ".join(gap.collections),
                gap.last_asked.strftime("%Y-%m-%d %H:%M"),
                " | ".join(gap.questions),
            )
            for gap in gaps
        ],
    )
