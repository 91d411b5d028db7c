"""A follow-up question ("and for part-timers?") rewritten into one that retrieval can answer
on its own, from the conversation so far."""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.llm import LLMUnavailable, llm_complete, llm_configured

_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "resolve pronouns and references to earlier questions and answers, keep the user's "
    "language and wording otherwise, and do not answer it. Reply with the rewritten question "
    "only."
)
# Words that point back into the conversation (English); a question with one of these, or
# with very few content words, leans on the previous one.
_REFERRING = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|him|her|there|then|"
    r"same|such|above|previous|former|latter|one|ones)\b|^\s*(and|or|but|also|what about|"
    r"how about|why|why not|so)\b",
    re.IGNORECASE,
)
_CONTENT_WORD = re.compile(r"\b\w{4,}\b")
HISTORY_TURNS = 6


def question_standalone(
    question: str, *, history: Sequence[tuple[str, str]], previous_query: str | None
) -> str:
    """`history`: (role, text) of the earlier messages, oldest first; `previous_query`: the
    standalone form of the previous question. With an LLM, it rewrites the question; without
    one (or if it fails), a question that refers back is joined to the previous query, so
    that its words take part in the search."""
    if not history:
        return question
    if llm_configured():
        turns = [{"role": role, "content": text} for role, text in history[-HISTORY_TURNS:]]
        turns.append({"role": "user", "content": question})
        try:
            rewritten = llm_complete(system=_SYSTEM, user=turns, max_tokens=200).strip()
        except LLMUnavailable:
            rewritten = ""
        if rewritten:
            return rewritten
    if previous_query and (_REFERRING.search(question) or len(_CONTENT_WORD.findall(question)) < 3):
        return f"{previous_query} {question}"
    return question
