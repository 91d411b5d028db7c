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
  - `database`: a query answers and the pgvector extension is installed;
  - `broker`: the Celery broker accepts a connection (uploads are queued there);
  - `embedding`: the configured embedding provider is loaded (a local model is read from
    disk on the first probe, as it would be on the first search).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connection
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from core.metrics import metrics_allowed, metrics_exposition

# A probe waits at most this long for the broker (seconds).
BROKER_TIMEOUT = 3


def _database() -> str:
    from documents.extension import pgvector_enabled

    return f"pgvector {pgvector_enabled()}"


def _broker() -> str:
    from prodrag.celery import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
        return broker.as_uri()  # without the password


def _embedding() -> str:
    from documents.embedding import embedder

    provider = embedder()
    return f"{provider.model} ({provider.dimensions} dimensions)"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "broker": _broker,
    "embedding": _embedding,
}


def readiness() -> tuple[bool, dict]:
    """Every check's outcome; True if all passed."""
    results = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail, ok = check(), True
        except Exception as exc:  # any failure means: not ready, and why
            detail, ok = f"{type(exc).__name__}: {exc}".strip(), False
            if name == "database":
                # A broken connection is dropped, so that the next probe connects afresh.
                connection.close()
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
