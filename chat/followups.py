"""A follow-up question ("and for part-timers?") rewritten into one that retrieval can answer
on its own, from the conversation so far."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Standalone:
    """A question's standalone query, and the documents whose text it may carry: those of the
    earlier answers it was rewritten from (for the model, the answers shown to it; without one,
    whatever the previous query carried). The query is withheld with them
    (chat.selectors.answers_withhold)."""

    query: str
    derived_from: list[int] = field(default_factory=list)


def question_standalone(question: str, *, earlier: Sequence) -> Standalone:
    """`earlier`: the conversation's messages as the user may see them now (answers_withhold:
    a withheld answer's text is a notice, a withheld query is empty), oldest first. With an
    LLM, it rewrites the question from the last turns; without one (or if it fails), a
    question that refers back is joined to the previous question's query, so that its words
    take part in the search."""
    if not earlier:
        return Standalone(question)
    if llm_configured():
        shown = list(earlier)[-HISTORY_TURNS:]
        turns = [{"role": m.role, "content": m.text} for m in shown]
        turns.append({"role": "user", "content": question})
        try:
            rewritten = llm_complete(system=_SYSTEM, user=turns, max_tokens=200).strip()
        except LLMUnavailable:
            rewritten = ""
        if rewritten:
            return Standalone(rewritten, sorted({pk for m in shown for pk in m.documents}))
    previous = next((m for m in reversed(earlier) if m.role == "user"), None)
    if previous is None or not (
        _REFERRING.search(question) or len(_CONTENT_WORD.findall(question)) < 3
    ):
        return Standalone(question)
    if not previous.query:  # withheld: the previous question's own words stand in
        return Standalone(f"{previous.text} {question}")
    return Standalone(f"{previous.query} {question}", list(previous.derived_from))
