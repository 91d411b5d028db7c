from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Q
from django.http import Http404

from chat.models import Conversation, Feedback, Message
from documents.models import Document, DocumentVersion
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
    `withheld` is set. The instances are changed in place, for showing only (never saved).
    One query for the whole list, whatever its length."""
    messages = list(messages)
    readable = documents_readable_among(user, {pk for m in messages for pk in m.documents})
    for message in messages:
        message.withheld = not set(message.documents) <= readable
        if message.withheld:
            message.text, message.notice = WITHHELD, WITHHELD
            message.sources, message.cited, message.documents = [], [], []
            message.citations_dropped = message.links_removed = 0
    return messages


def feedback_visible_to(user):
    """Feedback the user may see (the feedback admin): on answers all of whose documents they
    may read; all of it for superusers."""
    feedback = Feedback.objects.all()
    if user.is_superuser:
        return feedback
    readable = ArraySubquery(Document.objects.visible_to(user).values("pk"))
    return feedback.filter(Q(message__documents=[]) | Q(message__documents__contained_by=readable))


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
