"""The API's shared wiring: one JSON shape for every error,

    {"error": {"status": 404, "code": "not_found", "message": "...", "fields": {...}}}

`fields` (on validation errors only) maps each bad input field to its messages."""

import logging

from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.admission import OVERLOADED_RETRY_AFTER, Overloaded

logger = logging.getLogger("prodrag.api")


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_DOWN):
        return database_unavailable_response(exc)
    if isinstance(exc, Overloaded):
        return overloaded_response(exc)
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


class Conflict(exceptions.APIException):
    """409: the request clashes with the current state of a resource (say, a taken id)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with an existing object."
    default_code = "conflict"


def json_text_valid(value) -> None:
    """Validator of a JSON input field: PostgreSQL's text and jsonb cannot hold the NUL
    character (DRF's CharField refuses it; its JSON and dict fields do not)."""
    if isinstance(value, dict):
        for key, item in value.items():
            json_text_valid(key)
            json_text_valid(item)
    elif isinstance(value, list):
        for item in value:
            json_text_valid(item)
    elif isinstance(value, str) and "\x00" in value:
        raise exceptions.ValidationError("Text may not contain the NUL character (\\u0000).")


# Errors of the connection, not of the statement: the server is down, restarting or unreachable.
DATABASE_DOWN = (OperationalError, InterfaceError)
# Seconds a client is asked to wait before trying again while the database is down.
DATABASE_RETRY_AFTER = 5


def database_unavailable_response(exc) -> JsonResponse:
    """503 in the error shape, with Retry-After: the request did nothing; once the database is
    back, the same request succeeds (every request opens a new connection if its last one
    broke)."""
    logger.error("Database unavailable: %s", exc)
    # Dropped now, so that the next request connects afresh once the server is back.
    connection.close()
    body = _body(
        503,
        "database_unavailable",
        "The database is unavailable; nothing was changed. Try again in a few seconds.",
    )
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def overloaded_response(exc: Overloaded) -> JsonResponse:
    """503 in the error shape, with Retry-After: too many searches at once (core.admission)."""
    response = JsonResponse(_body(503, "overloaded", str(exc)), status=503)
    response["Retry-After"] = str(OVERLOADED_RETRY_AFTER)
    return response


def not_found(request, exception):
    """Django's 404 handler: under /api/, a path that matches no endpoint (say, a document id
    that is not a number) answers in the error shape too, not with an HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse(_body(404, "not_found", "No such endpoint or object."), status=404)
    return defaults.page_not_found(request, exception)


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


# Statuses any operation may answer in the error shape (400 also for a bad query parameter,
# 404 also for a page past the end).
_ERROR_STATUSES = {
    "400": "Invalid input.",
    "401": "No valid token: missing, unknown, revoked or expired.",
    "403": "The token's scope or the user's rights do not allow this.",
    "404": "Not found, or not readable by this user (the two are not told apart).",
    "405": "This method is not allowed here.",
    "406": "The Accept header asks only for media types the API does not serve (it serves JSON).",
    "409": "The request clashes with an existing object (say, a taken external id).",
    "413": "The request body is too large.",
    "415": "The request body's content type is not accepted here.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
}


def error_responses_document(result, generator, request, public):
    """drf-spectacular post-processing hook: the error shape, and the error statuses every
    operation may answer, in the schema, so that clients (and schemathesis) know them."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "code", "message"],
                "properties": {
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {
                        "type": "object",
                        "description": "On validation errors: each bad field's messages.",
                    },
                },
            }
        },
    }
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in _ERROR_STATUSES.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
