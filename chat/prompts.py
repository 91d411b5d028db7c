"""Prompts for generation: the task's instructions (files in chat/instructions/, chosen per
request) as the system message; the fenced sources and the question as the user's."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chat.context import ContextPassage

INSTRUCTIONS_DIR = Path(__file__).resolve().parent / "instructions"
TASKS = ("answer", "summarise", "compare")


class UnknownTask(ValueError):
    pass


# A fence's tag in any case and spacing (`< / SOURCE`): written by a document, it would close
# its source early, or open one with a number of its choosing.
_FENCE = re.compile(r"<(\s*/?\s*source)", re.IGNORECASE)


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str


@functools.cache
def _instructions(task: str) -> str:
    if task not in TASKS:
        raise UnknownTask(f"Unknown prompt {task!r}; one of: {', '.join(TASKS)}.")
    return (INSTRUCTIONS_DIR / f"{task}.txt").read_text(encoding="utf-8")


def prompt_render(*, task: str, sources: Sequence[ContextPassage], question: str) -> Prompt:
    """The task's instructions as the system message. The user's message holds the sources,
    each fenced as data with its number, title, version, section and pages, then the
    question: retrieved text never reaches the system message, where a model gives words
    the most weight."""
    fenced = "\n\n".join(_source(s) for s in sources)
    return Prompt(
        system=_instructions(task),
        user=f"Sources:\n\n{fenced}\n\nQuestion: {question}",
    )


def _unfenced(text: str) -> str:
    return _FENCE.sub(r"&lt;\1", text)


def _source(source: ContextPassage) -> str:
    first = source.first
    where = [f"title: {first.title}", f"version: {first.version}"]
    if first.heading_path:
        where.append("section: " + " > ".join(first.heading_path))
    start, end = source.pages
    if start is not None:
        where.append(f"pages: {start}" + (f"-{end}" if end and end != start else ""))
    # Everything a document wrote (title, headings, text) has its fence tags escaped, so it
    # cannot close its source early and write "instructions" outside.
    described = _unfenced("; ".join(where))
    return f'<source number="{source.number}">\n{described}\n\n{_unfenced(source.text)}\n</source>'
