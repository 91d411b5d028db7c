"""A question stored the way an ask stores it (chat.services: prepared, then stored), for tests
that answer it themselves or read it back."""

from chat.services import question_prepare, question_store


def question_add(*, conversation, user, text: str, scope=()):
    """`conversation`: one of the user's own, or None for a new one."""
    question = question_prepare(conversation=conversation, user=user, text=text, scope=scope)
    return question_store(question=question, owner=user)
