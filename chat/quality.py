"""What the admin's Quality page shows, as tables a chart can be drawn from and a CSV written
from: evaluation runs over time, feedback and answers per week, the questions the documents
do not answer (chat.gaps) and the state of ingestion.

Every number and every question is limited to what the viewer may see:
- an answer (and its feedback, and its question) counts only when the viewer may read every
  document it drew on (documents.authority, as answers_withhold) and every collection its
  question came from: the collections it was asked in, or, asked in all, those its asker
  could read; a collection counts for a viewer who may read in it (managers read in the
  collections they manage);
- evaluation runs: those of sets over collections the viewer may read in or manage;
- ingestion: the documents the viewer may read.
Superusers see everything.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_principals
from chat.models import Feedback, Message
from documents.models import Collection, Document
from documents.selectors import documents_readable_among
from retrieval.evaluation_runs import evaluation_runs_visible_to

WEEKS = 12
MOST_WEEKS = 104
# Evaluation runs charted per set and mode (the latest).
RUNS_PER_SERIES = 100
# The most common failure reasons listed.
FAILURE_REASONS = 5
# A failure reason is its error's first line, cut to this many characters.
REASON_CHARS = 160


@dataclass(frozen=True)
class Table:
    """A chart's numbers: what the page shows under it and the CSV holds."""

    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence]


def weeks_ending(now: dt.datetime, weeks: int) -> list[dt.date]:
    """The Mondays of the last `weeks` weeks, this one included, oldest first."""
    monday = now.date() - dt.timedelta(days=now.weekday())
    return [monday - dt.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def _week(moment: dt.datetime) -> dt.date:
    day = timezone.localtime(moment).date()
    return day - dt.timedelta(days=day.weekday())


class Viewer:
    """What one viewer may see of answers: the collections they may read in (a manager reads
    every document of the collections they manage, so those are among them), and (asked per
    batch) which documents they may read."""

    def __init__(self, user) -> None:
        self.user = user
        self.unrestricted = user_principals(user=user).unrestricted
        if not self.unrestricted:
            visible = Collection.objects.visible_to(user)
            self.collections = set(visible.values_list("pk", flat=True))
        self._askers: dict[int, set[int]] = {}

    def answers(self, answers: Iterable[Message]) -> list[Message]:
        """The answers this viewer may count (see the module docstring). Each answer needs
        `question` and `conversation` loaded."""
        answers = list(answers)
        if self.unrestricted:
            return answers
        readable = documents_readable_among(self.user, {pk for a in answers for pk in a.documents})
        return [
            answer
            for answer in answers
            if set(answer.documents) <= readable
            and self.question_collections(answer.question) <= self.collections
        ]

    def question_collections(self, question: Message | None) -> set[int]:
        """The collections a question came from: those it was asked in, else those its asker
        may read in now (one query per asker, the first time)."""
        if question is None:
            return set()
        if question.scope:
            return set(question.scope)
        owner = question.conversation.owner_id
        if owner not in self._askers:
            asker = User.objects.filter(pk=owner).first()
            readable = Collection.objects.visible_to(asker) if asker else Collection.objects.none()
            self._askers[owner] = set(readable.values_list("pk", flat=True))
        return self._askers[owner]


def runs_by_set(user) -> dict[str, dict[str, list]]:
    """Set name -> mode -> its latest RUNS_PER_SERIES evaluation runs, oldest first."""
    found: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for run in evaluation_runs_visible_to(user).order_by("created_at", "pk"):
        found[run.evaluation_set.name][run.mode].append(run)
    return {
        name: {mode: runs[-RUNS_PER_SERIES:] for mode, runs in sorted(modes.items())}
        for name, modes in sorted(found.items())
    }


RUN_COLUMNS = (
    "time (UTC)", "set", "mode", "queries", "nDCG@10", "recall@100", "MRR@10", "p50 ms",
    "p95 ms", "embedding model", "runtime", "code version", "trigger", "regression",
)  # fmt: skip


def runs_table(runs: dict[str, dict[str, list]]) -> Table:
    rows = [
        (
            run.created_at.strftime("%Y-%m-%d %H:%M"),
            name,
            mode,
            run.queries,
            round(run.ndcg_at_10, 4),
            round(run.recall_at_100, 4),
            round(run.mrr_at_10, 4),
            round(run.latency_p50_ms, 1),
            round(run.latency_p95_ms, 1),
            run.embedding_model,
            run.embedding_runtime,
            run.code_version,
            run.get_trigger_display(),
            "" if run.regressed_from is None else f"fell from {run.regressed_from:.4f}",
        )
        for name, modes in runs.items()
        for mode, series in modes.items()
        for run in series
    ]
    return Table(
        "Evaluation runs",
        RUN_COLUMNS,
        sorted(rows, reverse=True),
    )


def feedback_weekly(user, *, weeks: list[dt.date], collection: int | None = None) -> Table:
    """Helpful and not helpful ratings per week, on answers the viewer may count; with
    `collection`, only on answers that drew on one of its documents."""
    feedback = _feedback_visible(user, since=weeks[0])
    if collection is not None:
        drawn_on = {pk for f in feedback for pk in f.message.documents}
        in_collection = _documents_of(collection, drawn_on)
        feedback = [f for f in feedback if in_collection & set(f.message.documents)]
    counts = Counter((_week(f.created_at), f.helpful) for f in feedback)
    return Table(
        "Feedback per week",
        ("week", "helpful", "not helpful"),
        [(week.isoformat(), counts[week, True], counts[week, False]) for week in weeks],
    )


def feedback_by_collection(user, *, since: dt.date) -> Table:
    """Ratings since `since` per collection the viewer may see, on answers they may count
    (an answer counts for each collection it drew on), most not-helpful first."""
    feedback = _feedback_visible(user, since=since)
    homes = dict(
        Document.objects.filter(
            pk__in={pk for f in feedback for pk in f.message.documents}
        ).values_list("pk", "collection__name")
    )
    counts: Counter = Counter()
    for rating in feedback:
        for name in {homes[pk] for pk in rating.message.documents if pk in homes}:
            counts[name, rating.helpful] += 1
    names = sorted({name for name, _ in counts}, key=lambda n: (-counts[n, False], n))
    rows = []
    for name in names:
        helpful, unhelpful = counts[name, True], counts[name, False]
        rows.append((name, helpful, unhelpful, f"{unhelpful / (helpful + unhelpful):.0%}"))
    columns = ("collection", "helpful", "not helpful", "share not helpful")
    return Table("Feedback by collection", columns, rows)


def answers_weekly(user, *, weeks: list[dt.date]) -> Table:
    """Answers per week by how they were made, those the viewer may count."""
    answers = Message.objects.filter(
        role=Message.Role.ASSISTANT, created_at__date__gte=weeks[0]
    ).select_related("question__conversation", "conversation")
    counts = Counter((_week(a.created_at), a.mode) for a in Viewer(user).answers(answers))
    kinds = [Message.Mode.GENERATED, Message.Mode.EXTRACTIVE, Message.Mode.NOT_COVERED]
    return Table(
        "Answers per week",
        ("week", "generated", "extractive", "not covered"),
        [(week.isoformat(), *(counts[week, kind] for kind in kinds)) for week in weeks],
    )


def ingestion_summary(user) -> tuple[Table, Table]:
    """(documents per status, the most common failure reasons) of the documents the viewer
    may read."""
    documents = Document.objects.visible_to(user).order_by()
    per_status = documents.values_list("status").annotate(n=Count("pk"))
    counts = dict(per_status.values_list("status", "n"))
    statuses = Table(
        "Documents by status",
        ("status", "documents"),
        [(label, counts.get(value, 0)) for value, label in Document.Status.choices],
    )
    reasons = Counter(
        (error.strip().splitlines() or [""])[0][:REASON_CHARS]
        for error in documents.filter(status=Document.Status.FAILED).values_list("error", flat=True)
    )
    failures = Table(
        "Most common failure reasons",
        ("reason", "documents"),
        [(reason or "(no message)", n) for reason, n in reasons.most_common(FAILURE_REASONS)],
    )
    return statuses, failures


def _feedback_visible(user, *, since: dt.date) -> list[Feedback]:
    """Ratings given since `since` on answers the viewer may count."""
    feedback = list(
        Feedback.objects.filter(created_at__date__gte=since).select_related(
            "message__question__conversation", "message__conversation"
        )
    )
    visible = {a.pk for a in Viewer(user).answers({f.message for f in feedback})}
    return [f for f in feedback if f.message_id in visible]


def _documents_of(collection: int, ids: set[int]) -> set[int]:
    return set(
        Document.objects.filter(pk__in=ids, collection_id=collection).values_list("pk", flat=True)
    )


def feedback_collections(user) -> list[Collection]:
    """The collections the viewer may pick to see one collection's feedback."""
    return list(Collection.objects.visible_to(user).order_by("name"))


def collection_chosen(user, raw: str | None) -> Collection | None:
    """The collection of `?collection=`, if the viewer may pick it."""
    if not raw or not raw.isdigit():
        return None
    return next((c for c in feedback_collections(user) if c.pk == int(raw)), None)


def gap_questions(user, *, since: dt.date) -> list[tuple[Message, set[str], set[int]]]:
    """Questions since `since` that got a "not covered" answer or a not-helpful rating, which
    the viewer may see (their answers count for them): (question, reasons, the collections it
    came from). Newest first."""
    answers = list(
        Message.objects.filter(role=Message.Role.ASSISTANT, question__created_at__date__gte=since)
        .filter(Q(mode=Message.Mode.NOT_COVERED) | Q(feedback__helpful=False))
        .distinct()
        .select_related("question__conversation", "conversation")
    )
    viewer = Viewer(user)
    visible = {a.pk for a in viewer.answers(answers)}
    rated = Feedback.objects.filter(message__in=answers, helpful=False)
    unhelpful = set(rated.values_list("message", flat=True))
    found: dict[int, tuple[Message, set[str], set[int]]] = {}
    hidden: set[int] = set()
    for answer in answers:
        question = answer.question
        if answer.pk not in visible:
            # A question counts only if every answer it got may be counted by the viewer.
            hidden.add(question.pk)
            continue
        _, reasons, _ = found.setdefault(
            question.pk, (question, set(), viewer.question_collections(question))
        )
        if answer.mode == Message.Mode.NOT_COVERED:
            reasons.add("not covered")
        if answer.pk in unhelpful:
            reasons.add("not helpful")
    shown = [entry for pk, entry in found.items() if pk not in hidden]
    return sorted(shown, key=lambda entry: entry[0].created_at, reverse=True)
