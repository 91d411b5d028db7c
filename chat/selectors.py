from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import (
    BooleanField,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.http import Http404

from accounts.selectors import user_principals
from chat.models import Conversation, Feedback, Message
from documents.models import Collection, Document, DocumentVersion
from documents.selectors import access_document, documents_readable_among

# Characters of the document shown on each side of a cited passage.
SOURCE_WINDOW = 4000


def access_conversation(user, pk: int) -> Conversation:
    """The user's own conversation; 404 for another user's and for a missing one alike."""
    try:
        return Conversation.objects.of(user).get(pk=pk)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404("No such conversation.") from None


def access_answer(user, pk: int) -> Message:
    """An answer in one of the user's own conversations, else 404; withheld (see
    answers_withhold) if the user may no longer read one of its sources."""
    try:
        answer = Message.objects.select_related("conversation", "question").get(
            pk=pk, role=Message.Role.ASSISTANT, conversation__in=Conversation.objects.of(user)
        )
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("No such answer.") from None
    answers_withhold(user, [answer])
    return answer


WITHHELD = (
    "This answer is withheld: a document it drew on is no longer available to you (your "
    "access to it ended, or it was deleted). Ask again to get an answer from the documents "
    "you can read now."
)


def answers_withhold(user, messages: Iterable[Message]) -> list[Message]:
    """The messages as this user may see them now. An answer that used a document the user
    can no longer read (documents.authority, the same rule as search; a deleted document
    counts as unreadable) keeps no text, sources or citations: its text becomes WITHHELD and
    `withheld` is set. A question whose standalone query was rewritten from such an answer
    (Message.derived_from) keeps its own words but not the query: `query` becomes empty and
    `withheld` is set. The instances are changed in place, for showing only (never saved).
    One query for the whole list, whatever its length."""
    messages = list(messages)
    readable = documents_readable_among(
        user, {pk for m in messages for pk in (*m.documents, *m.derived_from)}
    )
    for message in messages:
        if message.role == Message.Role.USER:
            message.withheld = not set(message.derived_from) <= readable
            if message.withheld:
                message.query, message.derived_from = "", []
            continue
        message.withheld = not set(message.documents) <= readable
        if message.withheld:
            message.text, message.notice = WITHHELD, WITHHELD
            message.sources, message.cited, message.documents = [], [], []
            message.citations_dropped = message.links_removed = 0
    return messages


def answers_countable_by(user, answers: QuerySet[Message] | None = None) -> QuerySet[Message]:
    """The answers (of `answers`, default all) whose question, text, rating and count this user
    may see outside the asker's own conversations (the Quality page and its CSVs, the feedback
    admin): the user may read every document the answer drew on (documents.authority, as
    answers_withhold) and may read in every collection its question could draw on when it was
    asked (Message.reach). So a question whose answer used no document, or whose asker has
    since left or lost a grant, stays with the collections it was asked over. Unrestricted
    users (superusers) count every answer. One query, whatever is asked of it."""
    if answers is None:
        answers = Message.objects.filter(role=Message.Role.ASSISTANT)
    if user_principals(user=user).unrestricted:
        return answers
    # Each answer's own ids are looked up (by primary key, with the read rule) and counted:
    # an array of everything the user may read would be compared element by element.
    readable = _counted(Document.objects.visible_to(user), OuterRef("documents"))
    reached = _counted(Collection.objects.visible_to(user), OuterRef("question__reach"))
    return answers.alias(
        readable_documents=Subquery(readable), readable_reach=Subquery(reached)
    ).filter(
        readable_documents=_cardinality("documents"),
        # An unknown reach (NULL) has no cardinality: never equal.
        readable_reach=_cardinality("question__reach"),
    )


class _AmongIds(Func):
    """`pk = ANY(ids)`: the row is one of an array's ids (found through the primary key)."""

    template = "(%(expressions)s))"
    arg_joiner = " = ANY("
    output_field = BooleanField()


def _counted(allowed: QuerySet, ids) -> QuerySet:
    """How many of the array `ids` (distinct ids) are in `allowed`: one value."""
    among = allowed.filter(_AmongIds(F("pk"), ids))
    return among.order_by().values(n=Func(F("pk"), function="count"))


def _cardinality(field: str) -> Func:
    return Func(F(field), function="cardinality", output_field=IntegerField())


def feedback_visible_to(user) -> QuerySet[Feedback]:
    """Feedback the user may see (the feedback admin): on answers they may count
    (answers_countable_by), the rule of the Quality page."""
    return Feedback.objects.filter(message__in=answers_countable_by(user))


@dataclass(frozen=True)
class CitedSource:
    """A source of an answer, shown inside its document: the text before, the passage, and
    the text after (each cut to SOURCE_WINDOW), from the version the answer cited."""

    answer: Message
    source: dict
    current_version: int
    before: str
    passage: str
    after: str


def cited_source(user, *, answer_pk: int, number: int) -> CitedSource:
    """Source `number` of one of the user's answers, if they may (still) read its document;
    404 otherwise. If that version's text is gone, the passage as the answer saw it."""
    answer = access_answer(user, answer_pk)  # withheld: no sources, so 404 below
    source = next((s for s in answer.sources if s["number"] == number), None)
    if source is None:
        raise Http404("No such source.")
    document = access_document(user, source["document_id"])
    version = DocumentVersion.objects.filter(document=document, pk=source["version_id"]).first()
    current = document.current_version.number if document.current_version else source["version"]
    start, end = source.get("char_start"), source.get("char_end")
    text = version.text if version is not None else ""
    if start is None or end is None or not text or end > len(text):
        found = text.find(source["text"][:200]) if text else -1
        if found < 0:
            return CitedSource(answer, source, current, "", source["text"], "")
        start, end = found, found + len(source["text"])
    return CitedSource(
        answer,
        source,
        current,
        ("\u2026" if start > SOURCE_WINDOW else "") + text[max(0, start - SOURCE_WINDOW) : start],
        text[start:end],
        text[end : end + SOURCE_WINDOW] + ("\u2026" if end + SOURCE_WINDOW < len(text) else ""),
    )
