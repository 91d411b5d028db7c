"""Request middleware:
- ApiRequestSizeLimit: request size limits for the API, checked on the declared length before
  any of the body is read: a multipart upload may be as large as the file limit allows (plus
  its form fields), anything else PRODRAG_API_MAX_BODY_BYTES. Beyond that, 413 in the API's
  error shape.
- AuditOrigin: audit events recorded while a request is handled name its user, token, client
  address and whether it came through the API, the admin or the pages.
- ReadYourWrites: after a signed-in user's request that may have written (any method but
  GET, HEAD, OPTIONS), the primary's WAL position is remembered for them, so that their next
  reads come from a replica only once it has caught up (accounts.replicas).
- DatabaseUnavailable: a view that finds the database down, or too busy searching
  (core.admission), answers 503 with Retry-After (the API's error shape under /api/, a page
  that reloads itself elsewhere), not a 500; the API's own views do the same through
  core.api.exception_handler.
"""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from accounts.models import AuditEvent
from accounts.replicas import READ_ONLY_METHODS, write_mark
from accounts.services import AuditOrigin as Origin
from accounts.services import audit_origin
from core.admission import OVERLOADED_RETRY_AFTER, Overloaded
from core.api import (
    DATABASE_DOWN,
    DATABASE_RETRY_AFTER,
    database_unavailable_response,
    overloaded_response,
)

# Room for a multipart upload's other fields and part headers.
MULTIPART_OVERHEAD = 64 * 1024


class ApiRequestSizeLimit:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            limit, what = self._limit(request)
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                message = f"The request body is {length:,} bytes; {what} may be {limit:,} at most."
                body = {"error": {"status": 413, "code": "too_large", "message": message}}
                return JsonResponse(body, status=413)
        return self.get_response(request)

    @staticmethod
    def _limit(request) -> tuple[int, str]:
        if request.content_type == "multipart/form-data":
            limit = settings.INGEST_LIMITS["max_file_bytes"] + MULTIPART_OVERHEAD
            return limit, "an upload (PRODRAG_MAX_FILE_BYTES and its form fields)"
        return settings.API_MAX_BODY_BYTES, "a request (PRODRAG_API_MAX_BODY_BYTES)"


class AuditOrigin:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            via = AuditEvent.Via.API
        elif request.path.startswith("/admin/"):
            via = AuditEvent.Via.ADMIN
        else:
            via = AuditEvent.Via.PAGE
        with audit_origin(Origin(via=via, request=request)):
            return self.get_response(request)


class ReadYourWrites:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # The API authenticates in its views, which hand their user to the request.
        user = getattr(request, "user", None)
        if request.method not in READ_ONLY_METHODS and user is not None and user.is_authenticated:
            write_mark(user=user)
        return response


class DatabaseUnavailable:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Overloaded):
            if request.path.startswith("/api/"):
                return overloaded_response(exception)
            return self._page(OVERLOADED_RETRY_AFTER, "busy")
        if not isinstance(exception, DATABASE_DOWN):
            return None
        if request.path.startswith("/api/"):
            return database_unavailable_response(exception)
        return self._page(DATABASE_RETRY_AFTER, "database")

    @staticmethod
    def _page(retry_after: int, reason: str) -> HttpResponse:
        # Rendered without the request: its context processors would ask the database.
        page = render_to_string("503.html", {"retry_after": retry_after, "reason": reason})
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(retry_after)
        return response
