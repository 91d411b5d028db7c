"""The OpenAI-compatible chat-completions client that retrieval (query expansion, re-ranking)
and chat (answers) share, made to survive a flaky endpoint.

- Retries: a 429, a 5xx, a timeout or a dropped connection is tried again, up to
  PRODRAG_LLM_RETRIES times, after an exponential backoff with full jitter (a random delay
  between 0 and base * 2^attempt, capped), or after the endpoint's Retry-After when it
  sends one. Other errors (a 400, a malformed answer) are not retried.
- Circuit breaker: after PRODRAG_LLM_BREAKER_FAILURES failed attempts in a row, calls fail at
  once for PRODRAG_LLM_BREAKER_SECONDS instead of queueing behind an outage; then one trial
  call is let through (half-open), and its success closes the circuit. The state is per
  process, like the client: each web or worker process learns of an outage on its own.
- A stream is retried only until its first token; once text has reached the caller, a
  failure ends it with LLMUnavailable and the caller decides (chat falls back to extractive).
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Iterator

from django.conf import settings

from core import metrics
from core.tracing import tracer

_BACKOFF_CAP = 8.0
_RETRIED_STATUS = {408, 409, 429}


class LLMUnavailable(RuntimeError):
    """No endpoint is configured, it failed, or its circuit is open."""


def llm_configured() -> bool:
    return bool(settings.LLM_API_BASE)


class CircuitBreaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures = 0
        self.opened_at: float | None = None
        self._trial = False

    def allow(self) -> None:
        """Raise LLMUnavailable while the circuit is open; let one trial through after it."""
        with self._lock:
            if self.opened_at is None:
                return
            waited = time.monotonic() - self.opened_at
            if waited < settings.LLM_BREAKER_SECONDS or self._trial:
                raise LLMUnavailable(
                    f"The LLM endpoint failed {self.failures} times in a row; not calling it "
                    f"for {settings.LLM_BREAKER_SECONDS:g} s (circuit open)."
                )
            self._trial = True

    def succeeded(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self._trial = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            if self._trial or self.failures >= settings.LLM_BREAKER_FAILURES:
                self.opened_at, self._trial = time.monotonic(), False

    @property
    def state(self) -> str:
        return "closed" if self.opened_at is None else "open"


breaker = CircuitBreaker()


@functools.cache
def _client():
    import openai

    return openai.OpenAI(
        base_url=settings.LLM_API_BASE,
        api_key=settings.LLM_API_KEY or "unused",
        timeout=settings.LLM_TIMEOUT,
        max_retries=0,  # ours, below, with the breaker in the loop
    )


def _failures() -> tuple[type[Exception], ...]:
    """What a call or a stream can fail with: the client's errors, transport errors that
    surface while a stream is read, undecodable events, and our own malformed-answer check."""
    import httpx
    import openai

    return (openai.OpenAIError, httpx.HTTPError, ValueError, LLMUnavailable)


def _transient(exc: Exception) -> bool:
    import httpx
    import openai

    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):  # timeouts included
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRIED_STATUS or exc.status_code >= 500
    return False


def _delay(exc: Exception, attempt: int) -> float:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        if header is not None:
            return min(float(header), _BACKOFF_CAP)
    except ValueError:
        pass  # an HTTP date: rare from these endpoints; fall back to our own backoff
    return random.uniform(0, min(_BACKOFF_CAP, settings.LLM_BACKOFF * 2**attempt))  # noqa: S311


def _attempts(call, operation: str):
    """Run `call` under the breaker, retrying transient failures; returns its result.
    `operation` names the call in the metrics and the trace."""
    if not llm_configured():
        raise LLMUnavailable("No LLM endpoint is configured (PRODRAG_LLM_API_BASE).")
    for attempt in range(settings.LLM_RETRIES + 1):
        breaker.allow()
        started = time.monotonic()
        try:
            with tracer.start_as_current_span(f"llm.{operation}") as span:
                span.set_attribute("gen_ai.request.model", settings.LLM_MODEL)
                span.set_attribute("prodrag.llm.attempt", attempt + 1)
                result = call()
        except _failures() as exc:
            breaker.failed()
            metrics.LLM_ERRORS.labels(kind=type(exc).__name__).inc()
            if not _transient(exc) or attempt == settings.LLM_RETRIES:
                raise LLMUnavailable(f"The LLM endpoint failed: {exc}") from exc
            metrics.LLM_RETRIES.inc()
            time.sleep(_delay(exc, attempt))
        else:
            metrics.LLM_SECONDS.labels(operation=operation).observe(time.monotonic() - started)
            breaker.succeeded()
            return result
    raise AssertionError("unreachable")  # pragma: no cover


def _messages(system: str, user: str | list[dict]) -> list[dict]:
    turns = [{"role": "user", "content": user}] if isinstance(user, str) else user
    return [{"role": "system", "content": system}, *turns]


def llm_complete(*, system: str, user: str | list[dict], max_tokens: int = 512) -> str:
    """One non-streamed completion at temperature 0. `user`: the user turn, or the turns of a
    conversation. LLMUnavailable on any failure, after retries."""

    def call() -> str:
        response = _client().chat.completions.create(
            model=settings.LLM_MODEL,
            messages=_messages(system, user),
            temperature=0,
            max_tokens=max_tokens,
        )
        try:
            content = response.choices[0].message.content
        except (IndexError, AttributeError, TypeError) as exc:
            raise LLMUnavailable(f"malformed response ({exc})") from exc
        if not content:
            raise LLMUnavailable("empty answer")
        _usage_count(getattr(response, "usage", None))
        return content

    return _attempts(call, "complete")


def llm_stream(*, system: str, user: str | list[dict], max_tokens: int = 1024) -> Iterator[str]:
    """The completion's text as it is written. Retried (with the breaker) until the first
    piece of text arrives; LLMUnavailable after that if the stream breaks or is malformed."""

    def first() -> tuple[str, Iterator]:
        stream = iter(
            _client().chat.completions.create(
                model=settings.LLM_MODEL,
                messages=_messages(system, user),
                temperature=0,
                max_tokens=max_tokens,
                stream=True,
            )
        )
        for event in stream:
            text = _delta(event)
            if text:
                return text, stream
        raise LLMUnavailable("empty answer")

    text, stream = _attempts(first, "stream")
    yield text
    try:
        for event in stream:
            text = _delta(event)
            if text:
                yield text
            # Only endpoints that send it unasked: asking (stream_options) is refused by some.
            _usage_count(getattr(event, "usage", None))
    except _failures() as exc:
        breaker.failed()
        metrics.LLM_ERRORS.labels(kind=type(exc).__name__).inc()
        raise LLMUnavailable(f"The LLM endpoint broke off its answer: {exc}") from exc


def _usage_count(usage) -> None:
    for kind in ("prompt", "completion"):
        tokens = getattr(usage, f"{kind}_tokens", None)
        if isinstance(tokens, int) and tokens > 0:
            metrics.LLM_TOKENS.labels(kind=kind).inc(tokens)


def _delta(event) -> str:
    try:
        return (event.choices[0].delta.content or "") if event.choices else ""
    except (AttributeError, TypeError) as exc:
        raise LLMUnavailable(f"malformed stream event ({exc})") from exc
