"""Probes for load balancers and container orchestrators, and Prometheus' `/metrics` (see
core.metrics), answered by the first middleware:
before host validation (a probe sends whatever Host its platform sends), before the HTTPS
redirect, sessions and authentication, so that a probe costs nothing and touches nothing it
does not check.

- `/healthz`: the process answers. Nothing else is checked: restarting a web process because
  the database is down would not bring the database back.
- `/readyz`: the process can serve. Each check reports `ok` and, to a caller that may read
  the metrics (PRODRAG_METRICS_TOKEN), what it found, how long it took and, if it failed,
  why; any failed check makes the answer 503, so that traffic goes elsewhere until it
  recovers:
  - `database`: a query answers and pgvector 0.8 or newer is enabled (registered by the
    documents app);
  - `broker`: the Celery broker accepts a connection, uploads are queued there (registered
    with the Celery app, prodrag.celery);
  - `embedding`: the configured embedding provider is loaded, a local model read from disk
    on the first probe, as it would be on the first search (registered by the documents
    app).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from core.metrics import metrics_allowed, metrics_exposition

# The readiness checks, by name: each returns what it found, or raises why it failed. The apps
# and the wiring register theirs (readiness_check_register), so core imports none of them.
CHECKS: dict[str, Callable[[], str]] = {}
# What to do after a check failed (a broken database connection is dropped, so that the next
# probe connects afresh).
_AFTER_FAILURE: dict[str, Callable[[], None]] = {}


def readiness_check_register(
    name: str, check: Callable[[], str], *, after_failure: Callable[[], None] | None = None
) -> None:
    CHECKS[name] = check
    if after_failure is not None:
        _AFTER_FAILURE[name] = after_failure


def readiness() -> tuple[bool, dict]:
    """Every check's outcome; True if all passed."""
    results = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail, ok = check(), True
        except Exception as exc:  # any failure means: not ready, and why
            detail, ok = f"{type(exc).__name__}: {exc}".strip(), False
            if name in _AFTER_FAILURE:
                _AFTER_FAILURE[name]()
        results[name] = {
            "ok": ok,
            "detail": detail,
            "ms": round((time.monotonic() - started) * 1000, 1),
        }
    return all(result["ok"] for result in results.values()), results


class HealthProbes:
    """Answers /healthz, /readyz and /metrics (see the module docstring); passes everything
    else on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            ready, checks = readiness()
            if not metrics_allowed(request):
                # Addresses and error texts are for operators (the metrics token), not for
                # anyone who can reach the port.
                checks = {name: {"ok": check["ok"]} for name, check in checks.items()}
            return JsonResponse(
                {"status": "ready" if ready else "unavailable", "checks": checks},
                status=200 if ready else 503,
            )
        if request.path == "/metrics":
            if not metrics_allowed(request):
                return HttpResponseNotFound()
            return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)
        return self.get_response(request)
