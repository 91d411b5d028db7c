"""The API's shared wiring: one JSON shape for every error,

    {"error": {"status": 404, "code": "not_found", "message": "...", "fields": {...}}}

`fields` (on validation errors only) maps each bad input field to its messages."""

import logging

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("prodrag.api")


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug, not bad input: logged with its traceback, answered in the same shape.
        logger.exception("Unhandled error in %s", context["view"].__class__.__name__)
        return Response(
            _body(status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error", "Internal error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {}
        messages = [
            f"{name}: {' '.join(map(str, _flat(errors)))}" for name, errors in fields.items()
        ]
        if not fields:
            messages = [str(m) for m in _flat(exc.detail)]
        body = _body(response.status_code, "invalid", " ".join(messages) or "Invalid input.")
        if fields:
            body["error"]["fields"] = fields
    else:
        detail = getattr(exc, "detail", str(exc))
        code = detail.code if isinstance(detail, exceptions.ErrorDetail) else "error"
        body = _body(response.status_code, code, str(detail))
    response.data = body
    return response


def _body(status_code: int, code: str, message: str) -> dict:
    return {"error": {"status": status_code, "code": code, "message": message}}


def _flat(errors):
    if isinstance(errors, dict):
        for value in errors.values():
            yield from _flat(value)
    elif isinstance(errors, list):
        for value in errors:
            yield from _flat(value)
    else:
        yield errors
