"""Asking and answering: questions in, grounded and cited answers out, as a stream of events
that the chat pages (and the API) render."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts.models import AuditEvent
from accounts.pii import pii_mask
from accounts.services import audit_record
from chat.context import ContextPassage, context_assemble
from chat.extractive import answer_extractive
from chat.followups import question_standalone
from chat.grounding import LinkFilter, answer_check
from chat.models import Conversation, Feedback, Message
from chat.prompts import TASKS, prompt_render
from chat.selectors import answers_withhold
from core import metrics
from core.llm import LLMUnavailable, llm_complete, llm_configured, llm_stream
from documents.models import Chunk, Collection, Document
from retrieval.evaluation import document_evaluation_id
from retrieval.evaluation_runs import evaluation_set_register
from retrieval.models import EvaluationSet
from retrieval.selectors import FALLBACK_WARNING, passages_search
from retrieval.types import Filters, SearchResult

MAX_QUESTION_CHARS = 4000
NOT_COVERED = (
    "The documents you can read do not cover this question, so I will not guess. Try other "
    "words, or a wider collection scope."
)


class QuestionError(ValueError):
    """The question cannot be asked as given (empty, too long, unknown collection or task)."""


@dataclass(frozen=True)
class AnswerEvent:
    """`sources` (the numbered sources, as stored on the answer), `delta` (text as it is
    written), `reset` (throw away the text so far: generation failed mid-way and an
    extractive answer follows) and `done` (the stored answer Message)."""

    kind: str
    data: object = None


def question_prepare(
    *, conversation: Conversation | None, user, text: str, scope: Sequence[int] = ()
) -> Message:
    """The question as it will be stored, not saved yet: checked, and with the standalone query
    retrieval will run (rewritten from the conversation so far, as the user may see it now:
    withheld answers and the search text of questions they belong to stay out, from the model
    too). `conversation`: one of the user's own, or None for a new one; `scope`: collection ids
    the user may read, empty for all. Writes nothing, so that a question refused after this
    (too many searches at once) leaves no trace: question_store stores it once it is admitted.

    Locks: none."""
    text = text.strip()
    if not text:
        raise QuestionError("The question is empty.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(f"The question is longer than {MAX_QUESTION_CHARS} characters.")
    scope = sorted(set(scope))
    readable = set(Collection.objects.visible_to(user).values_list("pk", flat=True))
    if unknown := [pk for pk in scope if pk not in readable]:
        raise QuestionError(f"No such collection: {', '.join(map(str, unknown))}.")
    earlier = (
        answers_withhold(user, conversation.messages.order_by("created_at", "id"))
        if conversation is not None
        else []
    )
    standalone = question_standalone(text, earlier=earlier)
    return Message(
        conversation=conversation,
        role=Message.Role.USER,
        text=text,
        query=standalone.query,
        derived_from=standalone.derived_from,
        scope=scope,
        # What the question could draw on now decides who may see it later
        # (answers_countable_by).
        reach=scope or sorted(readable),
    )


def question_store(*, question: Message, owner) -> Message:
    """Store a prepared question (question_prepare), in a new conversation of `owner` when it
    has none; the conversation takes its title from its first question.

    Locks: the conversation row, while the question is stored, so that two questions sent at
    once are ordered."""
    with transaction.atomic():
        if question.conversation_id is None:
            conversation = Conversation.objects.create(owner=owner, title="New conversation")
        else:
            conversation = Conversation.objects.select_for_update().get(pk=question.conversation_id)
        text = question.text
        if not conversation.messages.exists():
            conversation.title = text if len(text) <= 80 else text[:79].rsplit(" ", 1)[0] + "\u2026"
        conversation.save(update_fields=["title", "updated_at"])
        question.conversation = conversation
        question.save()
        return question


def question_search(*, question: Message, user) -> SearchResult:
    """The passages the user may read for a question's standalone query, in its scope. Waits
    for a search slot, or raises core.admission.Overloaded having written nothing: an ask
    searches before it stores anything, so that a refused ask (or Regenerate) leaves every
    earlier row as it was.

    Locks: none."""
    return passages_search(
        user=user,
        query=question.query or question.text,
        k=settings.CHAT_PASSAGES,
        filters=Filters(collections=tuple(question.scope)),
    )


def answer_events(
    *,
    question: Message,
    user,
    stream: bool,
    task: str = "answer",
    retrieved: SearchResult | None = None,
):
    """Assemble, generate (streamed when `stream`), check and store an answer to a stored
    `question` from `retrieved` (question_search; searched here, before anything is written,
    when not given), as AnswerEvents. It always ends in `done` with an answer: generated; or
    extractive when no LLM is configured or it fails (even mid-stream: `reset`, then the
    extractive text); or `not_covered` when no readable passage is relevant enough."""
    if task not in TASKS:
        raise QuestionError(f"Unknown task {task!r}; one of: {', '.join(TASKS)}.")
    result = retrieved or question_search(question=question, user=user)
    started = time.monotonic() - result.seconds
    sources = context_assemble(
        result.passages,
        budget_tokens=settings.CONTEXT_TOKENS,
        min_similarity=settings.CONTEXT_MIN_SIMILARITY,
    )
    described = [_source_describe(source) for source in sources]
    answer = None
    try:
        yield AnswerEvent("sources", described)
        answer = yield from _answer_write(
            question=question,
            task=task,
            stream=stream,
            started=started,
            result=result,
            sources=sources,
            described=described,
        )
    finally:
        # Also when the asker went away mid-stream or answering failed: the sources were
        # shown by then.
        _ask_audit(question=question, user=user, described=described, answer=answer, task=task)
    yield AnswerEvent("done", answer)


def _answer_write(*, question, task, stream, started, result, sources, described):
    """Generate (or quote), check and store the answer; yields its deltas, returns it."""
    urls = {s["number"]: s["source"] for s in described if _is_address(s["source"])}
    notice, model = "", ""
    asked = question.query or question.text
    if not sources:
        mode, raw = Message.Mode.NOT_COVERED, NOT_COVERED
    elif not llm_configured():
        mode, raw = Message.Mode.EXTRACTIVE, answer_extractive(asked, sources)
        notice = "No language model is configured, so these are quotes from the best passages."
    else:
        prompt = prompt_render(task=task, sources=sources, question=asked)
        written: list[str] = []
        try:
            if stream:
                links = LinkFilter(allowed=set(urls.values()))
                for delta in llm_stream(system=prompt.system, user=prompt.user):
                    written.append(delta)
                    if safe := links.feed(delta):
                        yield AnswerEvent("delta", safe)
                if tail := links.finish():
                    yield AnswerEvent("delta", tail)
                raw = "".join(written)
            else:
                raw = llm_complete(system=prompt.system, user=prompt.user, max_tokens=1024)
            mode, model = Message.Mode.GENERATED, settings.LLM_MODEL
        except LLMUnavailable as exc:
            metrics.ANSWER_FALLBACKS.inc()
            if written:
                yield AnswerEvent("reset")
            mode, raw = Message.Mode.EXTRACTIVE, answer_extractive(asked, sources)
            notice = (
                f"The language model is unavailable ({exc}), so these are quotes from the best "
                "passages."
            )
    if result.fallback:
        notice = " ".join(filter(None, [FALLBACK_WARNING, notice]))
    checked = answer_check(raw, sources=len(sources), urls_by_source=urls)
    answer = Message.objects.create(
        conversation_id=question.conversation_id,
        role=Message.Role.ASSISTANT,
        question=question,
        text=checked.text,
        mode=mode,
        sources=described,
        documents=sorted({source["document_id"] for source in described}),
        cited=list(checked.cited),
        citations_dropped=checked.citations_dropped,
        links_removed=checked.links_removed,
        notice=notice,
        model=model,
        generation={
            "task": task,
            "stream": stream,
            "search_mode": result.mode,
            "k": settings.CHAT_PASSAGES,
            "fusion": settings.SEARCH_FUSION,
            "context_tokens": settings.CONTEXT_TOKENS,
            "min_similarity": settings.CONTEXT_MIN_SIMILARITY,
            "warnings": result.warnings,
            "search_fallback": result.fallback,
        },
        seconds=round(time.monotonic() - started, 3),
    )
    Conversation.objects.filter(pk=question.conversation_id).update(updated_at=answer.created_at)
    metrics.ANSWERS.labels(mode=mode).inc()
    metrics.CITATIONS_DROPPED.inc(checked.citations_dropped)
    return answer


def _ask_audit(*, question: Message, user, described: list[dict], answer: Message | None, task):
    by_number = {source["number"]: source for source in described}

    def pairs(sources) -> list[tuple[int, int]]:
        return [
            (source["document_id"], chunk) for source in sources for chunk in source["chunk_ids"]
        ]

    details = {
        "conversation": question.conversation_id,
        "question": question.pk,
        "answer": answer.pk if answer else None,
        "mode": answer.mode if answer else "incomplete",
        "task": task,
        "scope": question.scope,
    }
    if question.query and question.query != question.text:
        details["standalone_query"] = pii_mask(question.query)
    if question.derived_from:
        # Read by the audit's redaction: the query is withheld with these documents.
        details["derived_from"] = question.derived_from
    audit_record(
        action=AuditEvent.Action.ASK,
        actor=user,
        query=question.text,
        answer=answer.text if answer else "",
        returned=pairs(described),
        cited=pairs(by_number[n] for n in answer.cited if n in by_number) if answer else (),
        details=details,
    )


def answer_create(
    *, question: Message, user, task: str = "answer", retrieved: SearchResult | None = None
) -> Message:
    """The answer without streaming (pages without JavaScript, API calls without `stream`),
    as answer_events."""
    events = answer_events(
        question=question, user=user, stream=False, task=task, retrieved=retrieved
    )
    return list(events)[-1].data


def _source_describe(source: ContextPassage) -> dict:
    first = source.first
    start, end = source.pages
    return {
        "number": source.number,
        "chunk_ids": [p.chunk_id for p in source.passages],
        "document_id": first.document_id,
        "title": first.title,
        "source": first.source,
        "collection": first.collection,
        "version": first.version,
        "version_id": first.version_id,
        "section": list(first.heading_path),
        "page_start": start,
        "page_end": end,
        "char_start": min(
            (p.char_start for p in source.passages if p.char_start is not None), default=None
        ),
        "char_end": max(
            (p.char_end for p in source.passages if p.char_end is not None), default=None
        ),
        "similarity": max(
            (p.similarity for p in source.passages if p.similarity is not None), default=None
        ),
        "text": source.text,
    }


def _is_address(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def feedback_record(*, answer: Message, user, helpful: bool, comment: str = "") -> Feedback:
    """The user's vote on an answer; voting again replaces it (the unique constraint on
    message and user decides, not a prior read)."""
    if answer.role != Message.Role.ASSISTANT:
        raise QuestionError("Feedback is given on answers.")
    feedback, _ = Feedback.objects.update_or_create(
        message=answer, user=user, defaults={"helpful": helpful, "comment": comment.strip()}
    )
    return feedback


def feedback_export(*, directory: Path) -> tuple[int, int]:
    """Write the feedback as a BEIR-format evaluation set: each rated answer's question is a
    query (its standalone form), the passages the answer cited are its judged documents
    (relevant 1 if the answer was rated helpful, 0 if not; a passage rated both ways counts
    as relevant), and corpus.jsonl holds those passages (their stored text, or the text the
    answer saw if a newer version has replaced them). Answers that cite nothing judge
    nothing and are left out. Returns (queries, judgements)."""
    judged: dict[int, dict[int, int]] = {}
    queries: dict[int, str] = {}
    seen: dict[int, tuple[str, str]] = {}
    for feedback in Feedback.objects.select_related("message__question").order_by("pk"):
        answer = feedback.message
        for source in answer.sources:
            if source["number"] not in answer.cited:
                continue
            scores = judged.setdefault(answer.question_id, {})
            queries[answer.question_id] = answer.question.query or answer.question.text
            for chunk_id in source["chunk_ids"]:
                scores[chunk_id] = max(scores.get(chunk_id, 0), int(feedback.helpful))
                seen.setdefault(chunk_id, (source["title"], source["text"]))
    stored = dict(Chunk.objects.filter(pk__in=list(seen)).values_list("pk", "text").iterator())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "qrels").mkdir(exist_ok=True)
    with (directory / "queries.jsonl").open("w", encoding="utf-8") as out:
        for pk, text in queries.items():
            out.write(json.dumps({"_id": f"q{pk}", "text": text}) + "\n")
    with (directory / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for pk, (title, text) in seen.items():
            row = {"_id": str(pk), "title": title, "text": stored.get(pk, text)}
            out.write(json.dumps(row) + "\n")
    judgements = [(q, c, score) for q, scores in judged.items() for c, score in scores.items()]
    with (directory / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        out.writelines(f"q{q}\t{c}\t{score}\n" for q, c, score in judgements)
    return len(queries), len(judgements)


def feedback_evaluation_set_register(
    *, name: str, collection: Collection | None = None
) -> EvaluationSet:
    """Register the answers' feedback as an evaluation set (retrieval.evaluation_runs): each
    rated answer's question (its standalone form) is a query, and the documents its cited
    passages came from are judged, relevant if the answer was rated helpful (a document rated
    both ways counts as relevant), by their evaluation id. With a collection, the set searches
    it, and holds only questions that could draw on nothing else when asked (asked in it
    alone), with only its documents judged: the set is shown to everyone who reads in the
    collection, and a question belongs to the collections it could draw on (as on the Quality
    page). A query rewritten from answers on documents of other collections is replaced by
    the question's own words. Without a collection, the set searches every collection and is
    for superusers. Documents deleted since are left out.

    Locks: the set's row, when it exists (evaluation_set_register)."""
    judged: dict[str, dict[int, int]] = {}
    queries: dict[str, str] = {}
    feedback = Feedback.objects.select_related("message__question").order_by("pk")
    inside: set[int] = set()
    if collection is not None:
        feedback = list(feedback.filter(message__question__reach=[collection.pk]))
        # The rewritten queries' source documents that are in the set's collection.
        derived = {
            pk for r in feedback if r.message.question for pk in r.message.question.derived_from
        }
        in_collection = Document.objects.filter(pk__in=derived, collection=collection)
        inside = set(in_collection.values_list("pk", flat=True))
    for rating in feedback:
        answer = rating.message
        if answer.question is None:
            continue
        cited = {s["document_id"] for s in answer.sources if s["number"] in answer.cited}
        if not cited:
            continue
        qid = f"q{answer.question_id}"
        question = answer.question
        derived_inside = collection is None or set(question.derived_from) <= inside
        queries[qid] = (question.query if derived_inside else "") or question.text
        scores = judged.setdefault(qid, {})
        for document_id in cited:
            scores[document_id] = max(scores.get(document_id, 0), int(rating.helpful))
    documents = Document.objects.filter(pk__in={pk for s in judged.values() for pk in s})
    if collection is not None:
        documents = documents.filter(collection=collection)
    names = {
        pk: document_evaluation_id(external_id=external_id, source=source)
        for pk, external_id, source in documents.values_list("pk", "external_id", "source")
    }
    qrels = {
        qid: {names[pk]: score for pk, score in scores.items() if pk in names}
        for qid, scores in judged.items()
    }
    return evaluation_set_register(
        name=name,
        source=EvaluationSet.Source.FEEDBACK,
        queries=queries,
        qrels=qrels,
        collection=collection,
    )
