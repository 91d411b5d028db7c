"""An answer as server-sent events, for the chat page's script and for the API's `stream`."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable, Iterator

from chat.models import Message
from chat.services import answer_events
from retrieval.types import SearchResult

log = logging.getLogger(__name__)


def answer_sse(
    *,
    question: Message,
    user,
    task: str,
    opening: dict,
    sources: Callable[[list[dict]], dict],
    done: Callable[[Message], dict],
    retrieved: SearchResult | None = None,
) -> Iterator[str]:
    """`question` (the `opening` data), then `sources`, `delta` (text as it is written),
    `reset` (forget the text so far: an extractive answer follows) and `done` (the stored
    answer), or `error` if answering fails after the response has started (it is 200 by
    then, so the failure is told in the stream and logged). `retrieved`: the question's
    passages, searched before anything was stored (chat.services.question_search); searched
    when the stream starts when not given."""
    # The response streams after the request's middleware has returned: answering runs in a
    # copy of the request's context (its audit origin, log ids and trace span), entered only
    # while answering runs, never across a yield, so nothing of it leaks into whatever the
    # server does between two events.
    return _answer_sse(
        contextvars.copy_context(), question, user, task, retrieved, opening, sources, done
    )


def _answer_sse(
    request_context, question, user, task, retrieved, opening, sources, done
) -> Iterator[str]:
    yield sse_event("question", opening)
    events = request_context.run(
        answer_events, question=question, user=user, stream=True, task=task, retrieved=retrieved
    )
    try:
        while True:
            event = request_context.run(next, events, None)
            if event is None:
                break
            if event.kind == "delta":
                yield sse_event("delta", {"text": event.data})
            elif event.kind == "reset":
                yield sse_event("reset", {})
            elif event.kind == "sources":
                yield sse_event("sources", sources(event.data))
            elif event.kind == "done":
                yield sse_event("done", done(event.data))
    except Exception:
        log.exception("answering message %s failed", question.pk)
        yield sse_event(
            "error", {"message": "The answer could not be completed. Please try again."}
        )
    finally:
        # An asker who went away: what they were shown is still recorded.
        request_context.run(events.close)


def sse_event(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


def sse_headers(response):
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy in front must not hold the stream back
    return response
