"""What the admin's Quality page shows, as tables a chart can be drawn from and a CSV written
from: evaluation runs over time, feedback and answers per week, the questions the documents
do not answer (chat.gaps) and the state of ingestion.

Every number and every question is limited to what the viewer may see:
- an answer (and its feedback, and its question) counts only when the viewer may read every
  document it drew on and read in every collection its question could draw on when it was
  asked: chat.selectors.answers_countable_by, the feedback admin's rule too;
- evaluation runs: those of sets over collections the viewer may read in or manage;
- ingestion: the documents the viewer may read.
Superusers see everything.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from chat.models import Feedback, Message
from chat.selectors import answers_countable_by, feedback_visible_to
from documents.models import Collection, Document
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
    answers = answers_countable_by(user).filter(created_at__date__gte=weeks[0])
    counts = Counter((_week(at), mode) for at, mode in answers.values_list("created_at", "mode"))
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
    return list(
        feedback_visible_to(user).filter(created_at__date__gte=since).select_related("message")
    )


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
    the viewer may see (every answer they got counts for the viewer): (question, reasons, the
    collections it could draw on). Newest first."""
    gaps = (
        Message.objects.filter(role=Message.Role.ASSISTANT, question__created_at__date__gte=since)
        .filter(Q(mode=Message.Mode.NOT_COVERED) | Q(feedback__helpful=False))
        .distinct()
    )
    answers = list(gaps.select_related("question"))
    visible = set(answers_countable_by(user, gaps).values_list("pk", flat=True))
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
        _, reasons, _ = found.setdefault(question.pk, (question, set(), set(question.reach or ())))
        if answer.mode == Message.Mode.NOT_COVERED:
            reasons.add("not covered")
        if answer.pk in unhelpful:
            reasons.add("not helpful")
    shown = [entry for pk, entry in found.items() if pk not in hidden]
    return sorted(shown, key=lambda entry: entry[0].created_at, reverse=True)
