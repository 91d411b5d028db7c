"""An answer's text as HTML: escaped, paragraphs and lists kept, each citation [n] a link to
source n shown in its document. The only other links are the ones answer checking kept
(addresses of cited sources)."""

from __future__ import annotations

import re

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chat.grounding import LINK

register = template.Library()
_CITATION = re.compile(r"\[(\d+)\]")


@register.filter
def answer_html(message) -> SafeString:
    blocks = []
    for block in re.split(r"\n\s*\n", message.text.strip()):
        lines = [line for line in block.splitlines() if line.strip()]
        if lines and all(line.lstrip().startswith(("- ", "* ")) for line in lines):
            items = "".join(f"<li>{_inline(message, line.lstrip()[2:])}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        elif lines:
            blocks.append("<p>" + "<br>".join(_inline(message, line) for line in lines) + "</p>")
    return mark_safe("".join(blocks))  # noqa: S308 (every piece of text went through escape)


def _inline(message, text: str) -> str:
    pieces, last = [], 0
    for match in LINK.finditer(text):
        if not match.group(2).startswith(("https://", "http://")):
            continue
        pieces.append(_citations(message, escape(text[last : match.start()])))
        pieces.append(
            f'<a href="{escape(match.group(2))}" rel="noopener noreferrer nofollow">'
            f"{escape(match.group(1))}</a>"
        )
        last = match.end()
    pieces.append(_citations(message, escape(text[last:])))
    return "".join(pieces)


def _citations(message, escaped: str) -> str:
    def link(match: re.Match) -> str:
        number = int(match.group(1))
        url = reverse("chat:source", args=[message.pk, number]) + "#passage"
        title = next((s["title"] for s in message.sources if s["number"] == number), "")
        return f'<a class="cite" href="{url}" title="{escape(title)}">[{number}]</a>'

    return _CITATION.sub(link, escaped)
