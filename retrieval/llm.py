"""The OpenAI-compatible chat-completions client that retrieval (query expansion, re-ranking)
and chat (answers) share."""

from __future__ import annotations

import functools

from django.conf import settings


class LLMUnavailable(RuntimeError):
    """No endpoint is configured, or it failed."""


def llm_configured() -> bool:
    return bool(settings.LLM_API_BASE)


@functools.cache
def _client():
    import openai

    return openai.OpenAI(
        base_url=settings.LLM_API_BASE,
        api_key=settings.LLM_API_KEY or "unused",
        timeout=settings.LLM_TIMEOUT,
        max_retries=2,
    )


def llm_complete(*, system: str, user: str, max_tokens: int = 512) -> str:
    """One non-streamed completion at temperature 0; LLMUnavailable on any failure."""
    import openai

    if not llm_configured():
        raise LLMUnavailable("No LLM endpoint is configured (PRODRAG_LLM_API_BASE).")
    try:
        response = _client().chat.completions.create(
            model=settings.LLM_MODEL,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=0,
            max_tokens=max_tokens,
        )
        content = response.choices[0].message.content
    except (openai.OpenAIError, IndexError, AttributeError) as exc:
        raise LLMUnavailable(f"The LLM endpoint failed: {exc}") from exc
    if not content:
        raise LLMUnavailable("The LLM endpoint returned an empty answer.")
    return content
