"""Query expansion: more ways to ask the same question, each recalled separately.

With an LLM endpoint, the model writes alternative phrasings (multi-query); without one,
pseudo-relevance feedback adds the words that weigh most in the best passages of the first
search (keyword expansion, full-text only: the added words are stems). The searches are
fused by reciprocal-rank fusion in retrieval.selectors.
"""

from __future__ import annotations

import json
import re

from core.llm import LLMUnavailable, llm_complete, llm_configured

MAX_VARIANTS = 3
FEEDBACK_PASSAGES = 3
FEEDBACK_TERMS = 8

_SYSTEM = (
    "You help a search engine over company documents. Rewrite the user's query in "
    f"{MAX_VARIANTS} different ways that could match how documents phrase the answer "
    "(synonyms, formal terms, the likely wording of a policy or manual). Reply with JSON only: "
    '{"queries": ["...", "..."]}.'
)


def llm_variants(query: str) -> list[str]:
    """Up to MAX_VARIANTS rephrasings from the LLM; none when it is absent or fails."""
    if not llm_configured():
        return []
    try:
        answer = llm_complete(system=_SYSTEM, user=query, max_tokens=300)
        found = re.search(r"\{.*\}", answer, re.DOTALL)
        variants = json.loads(found.group(0))["queries"] if found else []
    except (LLMUnavailable, ValueError, KeyError, TypeError):
        return []
    seen = {query.strip().lower()}
    result = []
    for variant in variants:
        if isinstance(variant, str) and variant.strip() and variant.strip().lower() not in seen:
            seen.add(variant.strip().lower())
            result.append(variant.strip())
    return result[:MAX_VARIANTS]


def feedback_text(query: str, terms: list[str]) -> str:
    """The keyword-expanded query: the original words and the feedback terms."""
    return f"{query} {' '.join(terms)}"
