"""Structured logs: one JSON object per line, each carrying the request id, the Celery task id
and the user id of the work it belongs to, so that one upload can be followed from its HTTP
request into the worker's lines for the task it queued.

- RequestId (middleware): the request's id is the caller's `X-Request-ID` if it is a sane
  token (letters, digits, `-`, `_`, `.`; at most 64), else a new one; the response echoes it.
- Tasks queued while a request is handled carry its request and user ids in their message
  headers; the worker sets them, with the task's id, for the task's duration.
- JsonFormatter: time, level, logger, message, the ids, and the exception if any. Nothing
  else of the request is logged: no headers (tokens), no bodies. Text a user typed (a query)
  is masked with accounts.pii.pii_mask by whoever logs it.

PRODRAG_LOG_FORMAT=plain gives classic text lines instead (with the same ids).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from django.utils.functional import SimpleLazyObject, empty

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id: ContextVar[int | None] = ContextVar("user_id", default=None)
task_id: ContextVar[str | None] = ContextVar("task_id", default=None)
_request: ContextVar[object | None] = ContextVar("request", default=None)

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Message headers of a queued task.
REQUEST_HEADER, USER_HEADER = "prodrag_request_id", "prodrag_user_id"


def current_user_id() -> int | None:
    """The user of the work being done, if known: set for a task, or the request's user once
    authentication has resolved it (a lazy user is never resolved just to be logged)."""
    known = user_id.get()
    if known is not None:
        return known
    request = _request.get()
    user = vars(request).get("user") if request is not None else None
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return user.pk if user.is_authenticated else None


class ContextFilter(logging.Filter):
    """Adds the ids of the current request or task to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.task_id = task_id.get()
        record.user_id = current_user_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "task_id", "user_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


PLAIN_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [request=%(request_id)s task=%(task_id)s "
    "user=%(user_id)s] %(message)s"
)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(PLAIN_FORMAT)


class RequestId:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        rid = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        request.id = rid
        tokens = (request_id.set(rid), _request.set(request))
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(tokens[0])
            _request.reset(tokens[1])
        response["X-Request-ID"] = rid
        return response


def task_headers() -> dict:
    """Headers for a task queued now: the current request's and user's ids."""
    headers = {}
    if (rid := request_id.get()) is not None:
        headers[REQUEST_HEADER] = rid
    if (uid := current_user_id()) is not None:
        headers[USER_HEADER] = uid
    return headers


def task_context_enter(*, tid: str, rid: str | None, uid: int | None) -> list:
    return [task_id.set(tid), request_id.set(rid), user_id.set(uid)]


def task_context_exit(tokens: list) -> None:
    for var, token in zip((task_id, request_id, user_id), tokens, strict=True):
        var.reset(token)
