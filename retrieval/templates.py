"""Prompt templates for generation: files in retrieval/prompts/, chosen per request."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from string import Template

from retrieval.context import ContextPassage

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
TASKS = ("answer", "summarise", "compare")


class UnknownTask(ValueError):
    pass


@functools.cache
def _template(task: str) -> Template:
    if task not in TASKS:
        raise UnknownTask(f"Unknown prompt {task!r}; one of: {', '.join(TASKS)}.")
    return Template((PROMPTS_DIR / f"{task}.txt").read_text(encoding="utf-8"))


def prompt_render(*, task: str, sources: Sequence[ContextPassage]) -> str:
    """The system prompt: the task's instructions and the sources, each fenced as data with
    its number, title, version, section and pages."""
    return _template(task).substitute(sources="\n\n".join(_source(s) for s in sources))


def _source(source: ContextPassage) -> str:
    first = source.first
    where = [f"title: {first.title}", f"version: {first.version}"]
    if first.heading_path:
        where.append("section: " + " > ".join(first.heading_path))
    start, end = source.pages
    if start is not None:
        where.append(f"pages: {start}" + (f"-{end}" if end and end != start else ""))
    # The fence is escaped inside the text, so a document cannot close it early and write
    # "instructions" outside.
    text = source.text.replace("<source", "&lt;source").replace("</source", "&lt;/source")
    return f'<source number="{source.number}">\n{"; ".join(where)}\n\n{text}\n</source>'
